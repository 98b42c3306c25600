import Mux

/// A route's UDP loads (`--datagram-flows`), for the routes that carry UDP: direct, tcptunnel (`-L …/udp`),
/// tcptunnel-tls and ss-tunnel (`-u`).
public struct DatagramsReport: Codable, Sendable {
    /// Request/response datagrams, one entry per flow count.
    public var requests: [DatagramRequestReport] = []
    /// The paced stream, one step per offered rate, doubling until loss passed 1 %.
    public var stream: [DatagramStreamStep] = []
    /// DNS-like requests on one flow beside bulk TCP streams.
    public var besideBulk: DatagramBesideBulkReport?
    /// Whether datagrams of each of `DatagramSizeCheck.sizes` came back whole: larger than an Ethernet path's MTU,
    /// up to the largest UDP carries.
    public var wholeDatagrams: [DatagramSizeCheck] = []

    /// The highest offered rate whose loss stayed at or under 1 %, in datagrams per second.
    public var bestRateAtOnePercentLoss: Double? {
        stream.filter { $0.lossPercent <= 1 }.map(\.offeredPerSecond).max()
    }
}

/// Request/response datagrams: each flow (a UDP socket of its own) sends one, waits for its echo, and repeats.
public struct DatagramRequestReport: Codable, Sendable {
    public var flows: Int
    public var size: Int
    public var requestsPerSecond: Double
    public var p50Microseconds: Double
    public var p99Microseconds: Double
    /// Requests whose echo did not come within the wait: lost (or late) datagrams.
    public var lost: Int
}

/// One step of the paced stream: datagrams offered at a steady rate for the step's time, echoed back; what
/// came back, and the loss.
public struct DatagramStreamStep: Codable, Sendable {
    public var offeredPerSecond: Double
    public var size: Int
    public var sent: Int
    public var received: Int
    public var lossPercent: Double
}

/// One datagram of `size` bytes sent through the route: whether its echo came back, byte for byte, in one piece.
public struct DatagramSizeCheck: Codable, Sendable {
    public var size: Int
    public var intact: Bool

    /// A datagram that fits a 1,500-byte MTU path, one byte more, a jumbo frame's, and the largest UDP over IPv4.
    static let sizes = [1_472, 1_473, 9_000, 65_507]

    /// Sends one datagram of each size through `entry` and checks each echo.
    static func run(entry: Endpoint, pattern: TestPattern) throws(BenchError) -> [DatagramSizeCheck] {
        try sizes.map { size throws(BenchError) in
            let socket: DatagramSocket
            do {
                socket = try DatagramSocket.connect(to: entry.resolve()[0])
            } catch {
                throw BenchError("datagram of \(size) bytes to \(entry): \(error)")
            }
            defer { socket.close() }
            let datagram = Array(pattern.bytes[..<size])
            var echo = [UInt8](repeating: 0, count: size + 1)
            let sent = (try? datagram.withUnsafeBytes { try socket.send($0) }) == true
            return DatagramSizeCheck(
                size: size,
                intact: sent
                    && DatagramRequestLoad.awaitEcho(of: datagram, into: &echo, on: socket, until: .now + .seconds(2)))
        }
    }
}

/// Datagram round trips beside bulk TCP streams on the same route.
public struct DatagramBesideBulkReport: Codable, Sendable {
    public var bulkStreams: Int
    public var requests: DatagramRequestReport
    public var bulkMegabytesPerSecond: Double
}

/// UDP flows held idle through one tcptunnel link, and what they cost each agent.
public struct IdleFlowsReport: Codable, Sendable {
    public var requested: Int
    /// Flows whose first datagram came back, and so exist on both agents.
    public var usable: Int
    /// Resident memory of each agent before the flows were opened and once all were, in bytes.
    public var localBefore: Int
    public var localAfter: Int
    public var remoteBefore: Int
    public var remoteAfter: Int
    public var firstFailure: String?
}
