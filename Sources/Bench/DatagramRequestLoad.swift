import Mux

/// Datagram round trips, as DNS makes them: each flow is a UDP socket of its own, connected to the route's UDP
/// entry, that sends a datagram numbered in its first bytes, waits up to `wait` seconds for that datagram's echo,
/// and repeats until the load's time is up. A datagram whose echo does not come in time is counted lost.
enum DatagramRequestLoad {
    /// Seconds a flow waits for an echo before it counts the datagram lost and sends the next.
    static let wait = 0.5

    static func run(entry: Endpoint, flows: Int, seconds: Double, size: Int) throws(BenchError)
        -> DatagramRequestReport
    {
        let gate = StartGate(expected: flows)
        let outcomes = try Workers.run(flows, named: "bench-datagram") { index in
            let socket = try? DatagramSocket.connect(to: entry.resolve()[0])
            let start = gate.arriveAndWait()
            guard let socket else { return (latencies: [Double](), lost: 1) }
            defer { socket.close() }
            return roundTrips(on: socket, flow: index, until: start + .seconds(seconds), size: size)
        }
        let latencies = outcomes.flatMap(\.latencies).sorted()
        return DatagramRequestReport(
            flows: flows, size: size, requestsPerSecond: Double(latencies.count) / seconds,
            p50Microseconds: RequestLoad.percentile(0.50, of: latencies),
            p99Microseconds: RequestLoad.percentile(0.99, of: latencies), lost: outcomes.map(\.lost).reduce(0, +))
    }

    private static func roundTrips(
        on socket: DatagramSocket, flow: Int, until deadline: ContinuousClock.Instant, size: Int
    ) -> (latencies: [Double], lost: Int) {
        var request = [UInt8](repeating: UInt8(truncatingIfNeeded: flow), count: size)
        var response = [UInt8](repeating: 0, count: size + 1)
        var latencies: [Double] = []
        var lost = 0
        var sequence: UInt32 = 0
        while ContinuousClock.now < deadline {
            sequence &+= 1
            RequestLoad.stamp(sequence, into: &request)
            let sentAt = ContinuousClock.now
            guard (try? request.withUnsafeBytes { try socket.send($0) }) == true else {
                lost += 1
                continue
            }
            if awaitEcho(of: request, into: &response, on: socket, until: sentAt + .seconds(wait)) {
                latencies.append(sentAt.duration(to: .now).seconds * 1e6)
            } else {
                lost += 1
            }
        }
        return (latencies, lost)
    }

    /// Receives until `request`'s echo arrives (an earlier request's late echo is passed over) or `deadline`.
    static func awaitEcho(
        of request: [UInt8], into response: inout [UInt8], on socket: DatagramSocket,
        until deadline: ContinuousClock.Instant
    ) -> Bool {
        while true {
            let left = ContinuousClock.now.duration(to: deadline).seconds
            guard left > 0 else { return false }
            socket.socket.setReceiveTimeout(seconds: max(left, 0.001))
            guard let count = try? response.withUnsafeMutableBytes({ try socket.receive(into: $0).count }) else {
                return false
            }
            if count == request.count, response.prefix(count).elementsEqual(request) { return true }
        }
    }
}
