import Mux

/// Responses of one size on keep-alive connections, as a web or file server's clients see them: every
/// connection sends a small request, reads the whole response, checks it and sends the next, for the load's
/// time. Each response's time, from the request's send to its last byte, is recorded.
enum ResponseLoad {
    static func run(
        entry: Endpoint, connections: Int, size: Int, seconds: Double, pattern: TestPattern
    ) throws(BenchError) -> ResponseReport {
        let outcomes = try Workers.runConnected(
            connections, to: entry, named: "bench-response",
            failed: { error, _ in RequestLoad.StreamOutcome(latencies: [], failure: error.description) },
            each: { _, connection, start in
                connection.socket.setNoDelay()
                return responses(on: connection, size: size, until: start + .seconds(seconds), pattern: pattern)
            })
        let failures = outcomes.compactMap(\.failure)
        let latencies = outcomes.flatMap(\.latencies).sorted()
        let rate = Double(latencies.count) / seconds
        return ResponseReport(
            size: size, connections: connections, responsesPerSecond: rate,
            megabytesPerSecond: rate * Double(size) / 1e6, count: latencies.count,
            p50Microseconds: RequestLoad.percentile(0.50, of: latencies),
            p99Microseconds: RequestLoad.percentile(0.99, of: latencies),
            failedConnections: failures.count, firstFailure: failures.first)
    }

    private static func responses(
        on connection: LoadConnection, size: Int, until deadline: ContinuousClock.Instant, pattern: TestPattern
    ) -> RequestLoad.StreamOutcome {
        let greeting = ResponseProtocol.greeting
        var echo = [UInt8](repeating: 0, count: greeting.count)
        do {
            try connection.socket.sendAll(greeting)
        } catch {
            return RequestLoad.StreamOutcome(latencies: [], failure: "greeting: \(error)")
        }
        guard echo.withUnsafeMutableBytes({ connection.receiveExactly($0) }), echo == greeting else {
            return RequestLoad.StreamOutcome(latencies: [], failure: "the greeting did not come back")
        }
        let response = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { response.deallocate() }
        var latencies: [Double] = []
        var sequence: UInt32 = 0
        while ContinuousClock.now < deadline {
            sequence &+= 1
            let request = ResponseProtocol.request(size: size, sequence: sequence)
            let sentAt = ContinuousClock.now
            do {
                try connection.socket.sendAll(request)
            } catch {
                return RequestLoad.StreamOutcome(latencies: latencies, failure: "request \(sequence): \(error)")
            }
            guard connection.receiveExactly(response) else {
                return RequestLoad.StreamOutcome(
                    latencies: latencies, failure: "no whole response to request \(sequence)")
            }
            guard ResponseProtocol.isResponse(UnsafeRawBufferPointer(response), to: request, pattern: pattern) else {
                return RequestLoad.StreamOutcome(latencies: latencies, failure: "wrong response to request \(sequence)")
            }
            latencies.append(sentAt.duration(to: .now).seconds * 1e6)
        }
        return RequestLoad.StreamOutcome(latencies: latencies, failure: nil)
    }
}
