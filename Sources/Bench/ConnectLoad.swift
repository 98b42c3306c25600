import Mux

/// New connections: every thread connects, makes one request/response round trip, closes cleanly (its FIN,
/// then the target's) and starts over, until the load's time is up. Each connection's time from connect(2)
/// to its whole response is its first response.
enum ConnectLoad {
    /// A thread stops after this many failed connections in a row rather than spin on a broken route.
    static let maxFailuresPerThread = 20

    static func run(entry: Endpoint, streams: Int, seconds: Double, messageSize: Int) throws(BenchError)
        -> ConnectReport
    {
        let gate = StartGate(expected: streams)
        let outcomes = try Workers.run(streams, named: "bench-connect") { thread -> ThreadOutcome in
            let deadline = gate.arriveAndWait() + .seconds(seconds)
            var outcome = ThreadOutcome()
            let request = [UInt8](repeating: UInt8(truncatingIfNeeded: thread), count: messageSize)
            while ContinuousClock.now < deadline, outcome.failures < maxFailuresPerThread {
                switch oneConnection(to: entry, request: request) {
                case .success(let microseconds): outcome.firstResponses.append(microseconds)
                case .failure(let failure):
                    outcome.failures += 1
                    outcome.firstFailure = outcome.firstFailure ?? failure.description
                }
            }
            return outcome
        }
        let firstResponses = outcomes.flatMap(\.firstResponses).sorted()
        return ConnectReport(
            connectionsPerSecond: Double(firstResponses.count) / seconds, count: firstResponses.count,
            failures: outcomes.reduce(0) { $0 + $1.failures }, firstFailure: outcomes.compactMap(\.firstFailure).first,
            firstResponseP50Microseconds: RequestLoad.percentile(0.50, of: firstResponses),
            firstResponseP99Microseconds: RequestLoad.percentile(0.99, of: firstResponses))
    }

    private struct ThreadOutcome: Sendable {
        /// Microseconds from connect(2) to the whole first response, per connection that completed.
        var firstResponses: [Double] = []
        var failures = 0
        var firstFailure: String?
    }

    /// One connection's life; returns its first response's time in microseconds, or what went wrong.
    private static func oneConnection(to entry: Endpoint, request: [UInt8]) -> Result<Double, BenchError> {
        let started = ContinuousClock.now
        let connection: LoadConnection
        do {
            connection = try LoadConnection.open(to: entry)
        } catch {
            return .failure(error)
        }
        defer { connection.close() }
        connection.socket.setNoDelay()
        do {
            try connection.socket.sendAll(request)
        } catch {
            return .failure(BenchError("send: \(error)"))
        }
        var response = [UInt8](repeating: 0, count: request.count)
        guard response.withUnsafeMutableBytes({ connection.receiveExactly($0) }), response == request else {
            return .failure(BenchError("no echo"))
        }
        let firstResponse = started.duration(to: .now).seconds * 1e6
        connection.socket.shutdown(.write)
        let end = connection.drainToEnd()
        guard end.clean, end.bytes == 0 else { return .failure(BenchError("no clean close")) }
        return .success(firstResponse)
    }
}
