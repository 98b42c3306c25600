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

    init(upstream: Endpoint, inspect: @escaping Inspect) throws {
        listener = try Listener(endpoint: loopback)
        endpoint = listener.endpoint
        let accepted = Locked(0)
        try listener.start(logger: quietLogger) { downstream in
            guard let upstreamSocket = try? connect(to: upstream) else { return downstream.close() }
            let index = accepted.withLock { count in
                defer { count += 1 }
                return count
            }
            let pumpsLeft = Locked(2)
            let finish: @Sendable () -> Void = {
                guard
                    pumpsLeft.withLock({ left in
                        left -= 1
                        return left == 0
                    })
                else { return }
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
