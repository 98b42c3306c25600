import Foundation
import Glibc

@testable import Mux

/// An attacker without the key, on other loopback source addresses (127.0.0.2 and up): it holds silent
/// connections to a port, opening a new one whenever the agent closes one, and churns connect-and-close as fast
/// as it can. Bounded: every loop ends when `stop()` is called or `seconds` pass, whichever is first.
final class Flooder: Sendable {
    private let isStopping = Locked(false)
    private let finished: [Completion]
    /// Connections the silent flood had open when last counted, and how many it has opened in all.
    private let silentCounts = Locked((open: 0, opened: 0))
    private let churned = Locked(0)
    private let received = Locked(0)

    /// Starts `silent` silent connections spread over `silentSources` addresses from 127.0.0.2 on, and
    /// `churnThreads` threads of connect-and-close from the addresses after those, against `target`.
    init(target: Endpoint, silent: Int, silentSources: Int, churnThreads: Int, seconds: Double) throws {
        let deadline = Date(timeIntervalSinceNow: seconds)
        var finished: [Completion] = []
        let sources = (0..<silentSources).map { "127.0.0.\(2 + $0)" }
        let silentDone = Completion()
        finished.append(silentDone)
        for _ in 0..<churnThreads { finished.append(Completion()) }
        self.finished = finished
        let port = target.port
        try startThread(named: "flood-silent") { [self] in
            holdSilent(count: silent, sources: sources, port: port, until: deadline)
            silentDone.complete()
        }
        for index in 0..<churnThreads {
            let source = "127.0.0.\(2 + silentSources + index)"
            let done = finished[1 + index]
            try startThread(named: "flood-churn") { [self] in
                churn(from: source, port: port, until: deadline)
                done.complete()
            }
        }
    }

    /// Silent connections open now, and opened in all.
    var silent: (open: Int, opened: Int) { silentCounts.withLock { $0 } }
    /// Connect-and-close rounds so far.
    var churnedCount: Int { churned.withLock { $0 } }
    /// Bytes the agent sent to the silent connections: a stranger must get none.
    var bytesReceived: Int { received.withLock { $0 } }

    /// Stops every loop and closes every connection it holds.
    func stop() {
        isStopping.withLock { $0 = true }
        for done in finished { done.wait(seconds: 5) }
    }

    private var shouldStop: Bool { isStopping.withLock { $0 } }

    /// Keeps `count` connections open that never send a byte; one the agent closes is opened again.
    private func holdSilent(count: Int, sources: [String], port: UInt16, until deadline: Date) {
        var sockets: [Int32] = []
        var next = 0
        func open() {
            let fd = Self.connect(from: sources[next % sources.count], port: port)
            next += 1
            if fd >= 0 { sockets.append(fd) }
        }
        while sockets.count < count && !shouldStop && Date() < deadline { open() }
        silentCounts.withLock { $0 = (sockets.count, next) }
        var sink = [UInt8](repeating: 0, count: 512)
        while !shouldStop && Date() < deadline {
            var polls = sockets.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard poll(&polls, nfds_t(polls.count), 50) >= 0 else { continue }
            var closed = 0
            for (index, entry) in polls.enumerated() where entry.revents != 0 {
                let count = recv(entry.fd, &sink, sink.count, Int32(MSG_DONTWAIT))
                if count > 0 { received.withLock { $0 += count } }
                if count <= 0 {
                    Glibc.close(entry.fd)
                    sockets[index] = -1
                    closed += 1
                }
            }
            sockets.removeAll { $0 < 0 }
            for _ in 0..<closed { open() }
            silentCounts.withLock { $0 = (sockets.count, next) }
        }
        for fd in sockets { Glibc.close(fd) }
        silentCounts.withLock { $0.open = 0 }
    }

    /// Connects and at once closes with RST (so no TIME_WAIT uses up the source's ports), as fast as it can.
    private func churn(from source: String, port: UInt16, until deadline: Date) {
        while !shouldStop && Date() < deadline {
            let fd = Self.connect(from: source, port: port)
            guard fd >= 0 else { continue }
            var option = linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
            Glibc.close(fd)
            churned.withLock { $0 += 1 }
        }
    }

    /// A blocking TCP connection from `source` (an IPv4 address on loopback) to 127.0.0.1:`port`, or -1.
    static func connect(from source: String, port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &local.sin_addr)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = port.bigEndian
        inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr)
        let isConnected = withUnsafePointer(to: &local) { localPointer in
            withUnsafePointer(to: &remote) { remotePointer in
                localPointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { localAddress in
                    remotePointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { remoteAddress in
                        bind(fd, localAddress, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                            && Glibc.connect(fd, remoteAddress, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                    }
                }
            }
        }
        guard isConnected else {
            Glibc.close(fd)
            return -1
        }
        return fd
    }
}
