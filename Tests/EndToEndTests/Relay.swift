import Foundation

@testable import Mux

/// A TCP relay on 127.0.0.1 in front of `upstream`, where on-path observers and attackers sit: for each
/// connection, two threads copy bytes both ways and hand every chunk they read to `inspect` before forwarding
/// it, which may look at it or alter it.
final class Relay: Sendable {
    /// Which way a chunk goes.
    enum Direction: Hashable, CustomStringConvertible {
        case toRemote, toLocal
        var description: String { self == .toRemote ? "to the remote agent" : "to the local agent" }
    }

    /// Sees each chunk: the connection's number (0, 1, … in the order accepted), its direction, and the bytes.
    typealias Inspect = @Sendable (_ connection: Int, _ direction: Direction, _ chunk: inout [UInt8]) -> Void

    let endpoint: Endpoint
    private let listener: Listener
    /// The sockets of each connection relayed now, by number.
    private let open = Locked<[Int: (downstream: Socket, upstream: Socket)]>([:])
    /// Whether new connections are closed at once instead of relayed.
    private let refusing = Locked(false)

    init(upstream: Endpoint, inspect: @escaping Inspect) throws {
        listener = try Listener(endpoint: loopback)
        endpoint = listener.endpoint
        let accepted = Locked(0)
        let (open, refusing) = (open, refusing)
        try listener.start(logger: quietLogger) { downstream in
            guard !refusing.withLock({ $0 }), let upstreamSocket = try? connect(to: upstream) else {
                return downstream.close()
            }
            let index = accepted.withLock { count in
                defer { count += 1 }
                return count
            }
            open.withLock { $0[index] = (downstream, upstreamSocket) }
            let pumpsLeft = Locked(2)
            let finish: @Sendable () -> Void = {
                guard
                    pumpsLeft.withLock({ left in
                        left -= 1
                        return left == 0
                    })
                else { return }
                open.withLock { $0[index] = nil }
                downstream.close()
                upstreamSocket.close()
            }
            for (source, destination, direction) in [
                (downstream, upstreamSocket, Direction.toRemote), (upstreamSocket, downstream, .toLocal),
            ] {
                try? startThread(named: "relay") {
                    Self.pump(from: source, to: destination) { chunk in inspect(index, direction, &chunk) }
                    finish()
                }
            }
        }
    }

    func stop() {
        listener.stop()
    }

    /// Cuts every connection relayed now, as a path that fails would: both sides see their connection reset. While
    /// `refusingNew`, connections that arrive are closed at once, as if the far side were unreachable.
    func cut(refusingNew: Bool) {
        refusing.withLock { $0 = refusingNew }
        for (downstream, upstream) in open.withLock({ Array($0.values) }) {
            for socket in [downstream, upstream] {
                socket.setAbortOnClose()
                socket.shutdown(.both)
            }
        }
    }

    /// Relays new connections again after `cut(refusingNew: true)`.
    func restore() {
        refusing.withLock { $0 = false }
    }

    /// Copies until either side ends, then shuts both down, waking the other pump.
    private static func pump(from source: Socket, to destination: Socket, inspect: (inout [UInt8]) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while let count = try? buffer.withUnsafeMutableBytes({ try source.receive(into: $0) }), count > 0 {
            var chunk = Array(buffer[..<count])
            inspect(&chunk)
            guard (try? destination.sendAll(chunk)) != nil else { break }
        }
        source.shutdown(.both)
        destination.shutdown(.both)
    }
}
