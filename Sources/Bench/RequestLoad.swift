import Mux

/// Small request/response round trips: every stream sends a message, waits for its echo, and repeats
/// until the load's time is up. Each round trip's latency is recorded.
enum RequestLoad {
    static func run(entry: Endpoint, streams: Int, seconds: Double, messageSize: Int) throws(BenchError)
        -> RequestReport
    {
        let outcomes = try Workers.runConnected(
            streams, to: entry, named: "bench-request",
            failed: { error, _ in StreamOutcome(latencies: [], failure: error.description) },
            each: { index, connection, start in
                connection.socket.setNoDelay()
                return roundTrips(
                    on: connection, stream: index, until: start + .seconds(seconds), messageSize: messageSize)
            })
        let failures = outcomes.compactMap(\.failure)
        let latencies = outcomes.flatMap(\.latencies).sorted()
        return RequestReport(
            requestsPerSecond: Double(latencies.count) / seconds, count: latencies.count,
            p50Microseconds: percentile(0.50, of: latencies), p99Microseconds: percentile(0.99, of: latencies),
            failedStreams: failures.count, firstFailure: failures.first)
    }

    struct StreamOutcome: Sendable {
        /// Round-trip times in microseconds.
        var latencies: [Double]
        var failure: String?
    }

    /// The value below which `fraction` of the sorted `values` lie (nearest rank); 0 when there are none.
    static func percentile(_ fraction: Double, of sorted: [Double]) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }

    /// Writes `sequence` over the first bytes of `request`: it proves the response is this round trip's echo,
    /// not an earlier one's.
    static func stamp(_ sequence: UInt32, into request: inout [UInt8]) {
        withUnsafeBytes(of: sequence.littleEndian) { bytes in
            for index in 0..<min(4, request.count) { request[index] = bytes[index] }
        }
    }

    private static func roundTrips(
        on connection: LoadConnection, stream: Int, until deadline: ContinuousClock.Instant, messageSize: Int
    ) -> StreamOutcome {
        var request = [UInt8](repeating: UInt8(truncatingIfNeeded: stream), count: messageSize)
        var response = [UInt8](repeating: 0, count: messageSize)
        var latencies: [Double] = []
        var sequence: UInt32 = 0
        while ContinuousClock.now < deadline {
            sequence &+= 1
            stamp(sequence, into: &request)
            let sentAt = ContinuousClock.now
            do {
                try connection.socket.sendAll(request)
            } catch {
                return StreamOutcome(latencies: latencies, failure: "request \(sequence): \(error)")
            }
            guard response.withUnsafeMutableBytes({ connection.receiveExactly($0) }) else {
                return StreamOutcome(latencies: latencies, failure: "no response to request \(sequence)")
            }
            guard response == request else {
                return StreamOutcome(latencies: latencies, failure: "wrong response to request \(sequence)")
            }
            latencies.append(sentAt.duration(to: .now).seconds * 1e6)
        }
        return StreamOutcome(latencies: latencies, failure: nil)
    }
}
