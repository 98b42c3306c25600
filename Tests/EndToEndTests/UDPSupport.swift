import Foundation

@testable import Mux

/// A UDP server on 127.0.0.1 that answers each datagram with the same bytes (unless it is a sink, which answers
/// nothing), and remembers each source it heard from.
final class UDPTarget: @unchecked Sendable {  // `sources` is a `Locked`; the socket is the thread's until `stop`
    let endpoint: Endpoint
    /// Every source address and port a datagram came from, as `host:port`.
    let sources = Locked<Set<String>>([])
    private let socket: DatagramSocket
    private let stopped = Completion()
    private let finished = Completion()

    init(answers: Bool = true) throws {
        socket = try DatagramSocket.bind(to: try loopback.resolve(passive: true))
        endpoint = socket.localEndpoint
        socket.socket.setReceiveTimeout(seconds: 0.2)
        try startThread(named: "udp-target") { [self] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while !stopped.wait(seconds: 0) {
                let received = buffer.withUnsafeMutableBytes { raw in
                    Result { () throws(SocketError) in try socket.receive(into: raw) }
                }
                guard case .success(let (count, sender)) = received else { continue }
                sources.withLock { _ = $0.insert("\(sender.endpoint)") }
                guard answers else { continue }
                _ = buffer.withUnsafeBytes {
                    try? socket.send(UnsafeRawBufferPointer(rebasing: $0[..<count]), to: sender)
                }
            }
            socket.close()
            finished.complete()
        }
    }

    func stop() {
        stopped.complete()
        finished.wait(seconds: 2)
    }
}

/// A UDP client socket bound on `host` (127.0.0.1 unless another loopback address stands for another client).
final class UDPClient {
    let socket: DatagramSocket

    init(host: String = "127.0.0.1") throws {
        socket = try DatagramSocket.bind(to: try Endpoint(host: host, port: 0).resolve(passive: true))
    }

    deinit { socket.close() }

    /// The address the client sends from.
    var endpoint: Endpoint { socket.localEndpoint }

    /// Sends one datagram to `endpoint`.
    func send(_ bytes: [UInt8], to endpoint: Endpoint) throws {
        guard let address = ResolvedAddress(literal: endpoint.host, port: endpoint.port) else {
            throw SocketError(call: "sendto", code: EINVAL)
        }
        _ = try bytes.withUnsafeBytes { try socket.send($0, to: address) }
    }

    /// The next datagram to arrive within `seconds`, whole; `nil` if none did.
    func receive(within seconds: Double = 5) -> [UInt8]? {
        socket.socket.setReceiveTimeout(seconds: seconds)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let received = buffer.withUnsafeMutableBytes { raw in
            Result { () throws(SocketError) in try socket.receive(into: raw).count }
        }
        guard case .success(let count) = received else { return nil }
        return Array(buffer[..<count])
    }
}

/// A UDP port on 127.0.0.1 that nothing is bound to now.
func freeLoopbackUDPPort() throws -> UInt16 {
    let socket = try DatagramSocket.bind(to: try loopback.resolve(passive: true))
    defer { socket.close() }
    return socket.localEndpoint.port
}

/// `count` UDP ports on 127.0.0.1 that nothing is bound to now, all below Linux's ephemeral range (32768 and up), so
/// that no socket bound to port 0 by a test running beside takes one before its user binds it.
func freeLoopbackUDPPortsOutsideTheEphemeralRange(_ count: Int) throws -> [UInt16] {
    var ports: [UInt16] = []
    var candidate = UInt16.random(in: 20_000..<30_000)
    while ports.count < count, candidate < 32_768 {
        let address = try Endpoint(host: "127.0.0.1", port: candidate).resolve(passive: true)
        if let socket = try? DatagramSocket.bind(to: address) {
            socket.close()
            ports.append(candidate)
        }
        candidate += 1
    }
    guard ports.count == count else { throw SocketError(call: "bind", code: EADDRINUSE) }
    return ports
}
