import Foundation
import Mux

/// New connections: every thread connects, makes one round trip, closes cleanly (its FIN, then the
/// target's) and starts over, until the load's time is up.
enum ConnectLoad {
    /// A thread stops after this many failed connections in a row rather than spin on a broken route.
    static let maxFailuresPerThread = 20

    static func run(entry: Endpoint, streams: Int, seconds: Double) throws(BenchError) -> ConnectReport {
        let gate = StartGate(expected: streams)
        let outcomes = try Workers.run(streams, named: "bench-connect") { _ -> (Int, Int, String?) in
            let deadline = gate.arriveAndWait() + .seconds(seconds)
            var completed = 0
            var failures = 0
            var firstFailure: String?
            while ContinuousClock.now < deadline, failures < maxFailuresPerThread {
                if let failure = oneConnection(to: entry) {
                    failures += 1
                    firstFailure = firstFailure ?? failure
                } else {
                    completed += 1
                }
            }
            return (completed, failures, firstFailure)
        }
        let count = outcomes.reduce(0) { $0 + $1.0 }
        return ConnectReport(
            connectionsPerSecond: Double(count) / seconds, count: count,
            failures: outcomes.reduce(0) { $0 + $1.1 }, firstFailure: outcomes.compactMap(\.2).first)
    }

    /// One connection's life; returns what went wrong, or nil.
    private static func oneConnection(to entry: Endpoint) -> String? {
        let connection: LoadConnection
        do {
            connection = try LoadConnection.open(to: entry)
        } catch {
            return error.description
        }
        defer { connection.close() }
        var byte: [UInt8] = [0x2A]
        do {
            try connection.socket.sendAll(byte)
        } catch {
            return "send: \(error)"
        }
        guard byte.withUnsafeMutableBytes({ connection.receiveExactly($0) }), byte == [0x2A] else {
            return "no echo"
        }
        connection.socket.shutdown(.write)
        let end = connection.drainToEnd()
        guard end.clean, end.bytes == 0 else { return "no clean close" }
        return nil
    }
}
