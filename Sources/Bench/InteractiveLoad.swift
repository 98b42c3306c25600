import Mux

/// Interactive under bulk: `bulkStreams` bulk echo streams fill the route for the load's time while one more
/// stream makes small request/response round trips on it. The interactive stream starts a quarter of the way
/// in, once the bulk streams have filled the path's queues, and stops before they do.
enum InteractiveLoad {
    static func run(
        entry: Endpoint, bulkStreams: Int, seconds: Double, messageSize: Int, pattern: TestPattern
    ) throws(BenchError) -> InteractiveReport {
        let interactive = Locked<Result<RequestReport, BenchError>?>(nil)
        let done = Completion()
        do {
            try startThread(named: "bench-interactive") {
                sleep(seconds: seconds / 4)
                let report = Result { () throws(BenchError) in
                    try RequestLoad.run(entry: entry, streams: 1, seconds: seconds / 2, messageSize: messageSize)
                }
                interactive.withLock { $0 = report }
                done.complete()
            }
        } catch {
            throw BenchError("load generator: \(error)")
        }
        let bulk = try BulkLoad.run(entry: entry, streams: bulkStreams, seconds: seconds, pattern: pattern)
        done.wait()
        let requests = try interactive.withLock { $0! }.get()
        return InteractiveReport(bulkStreams: bulkStreams, requests: requests, bulk: bulk)
    }
}
