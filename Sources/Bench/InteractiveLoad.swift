import Mux

/// Interactive under bulk: `bulkStreams` bulk echo streams fill the route for the load's time while one more
/// stream makes small request/response round trips on it. The interactive stream starts a quarter of the way
/// in, once the bulk streams have filled the path's queues, and stops before they do.
enum InteractiveLoad {
    static func run(
        entry: Endpoint, bulkStreams: Int, seconds: Double, messageSize: Int, pattern: TestPattern
    ) throws(BenchError) -> InteractiveReport {
        let (requests, bulk) = try besideBulk(
            entry: entry, bulkStreams: bulkStreams, seconds: seconds, pattern: pattern
        ) { (interactiveSeconds) throws(BenchError) in
            try RequestLoad.run(entry: entry, streams: 1, seconds: interactiveSeconds, messageSize: messageSize)
        }
        return InteractiveReport(bulkStreams: bulkStreams, requests: requests, bulk: bulk)
    }

    /// Runs `bulkStreams` bulk echo streams for `seconds` and, from a quarter of that time, `measure` for half of
    /// it (the seconds it is given) on a thread of its own; returns what both measured.
    static func besideBulk<Measured: Sendable>(
        entry: Endpoint, bulkStreams: Int, seconds: Double, pattern: TestPattern,
        measure: @escaping @Sendable (Double) throws(BenchError) -> Measured
    ) throws(BenchError) -> (Measured, BulkReport) {
        let measured = Locked<Result<Measured, BenchError>?>(nil)
        let done = Completion()
        do {
            try startThread(named: "bench-interactive") {
                sleep(seconds: seconds / 4)
                let report = Result { () throws(BenchError) in try measure(seconds / 2) }
                measured.withLock { $0 = report }
                done.complete()
            }
        } catch {
            throw BenchError("load generator: \(error)")
        }
        let bulk = try BulkLoad.run(entry: entry, streams: bulkStreams, seconds: seconds, pattern: pattern)
        done.wait()
        return (try measured.withLock { $0! }.get(), bulk)
    }
}
