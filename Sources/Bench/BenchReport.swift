import FoundationEssentials
import Mux

/// Everything one `tcptunnel bench` run measured, as written to `--json`.
public struct BenchReport: Codable, Sendable {
    /// Where and how the run was made.
    public var machine: MachineDescription
    public var settings: BenchSettings
    /// One entry per route (tcptunnel, then each peer), in the order they ran.
    public var routes: [RouteReport] = []
    /// The many-idle-streams check, when `--hold` asked for it.
    public var hold: HoldReport?
    /// The idle UDP flows check, when `--idle-flows` asked for it.
    public var idleFlows: IdleFlowsReport?
}

/// The machine a run was made on.
public struct MachineDescription: Codable, Sendable {
    public var date: String
    public var cpus: Int
    public var cpuModel: String
    public var memoryGiB: Double
    public var kernel: String
    public var build: String
    /// Payload MB/s one core seals with tcptunnel's XChaCha20-Poly1305 framing (32 KiB frames).
    public var sealMegabytesPerSecond: Double?

    /// This machine, now.
    public static func current() -> MachineDescription {
        let cpuInfo = SystemFile.text("/proc/cpuinfo") ?? ""
        let model = cpuInfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1)[1]).trimmed }
        let kernel = (SystemFile.text("/proc/sys/kernel/osrelease") ?? "?").trimmed
        #if DEBUG
            let build = "debug"
        #else
            let build = "release"
        #endif
        return MachineDescription(
            date: Date.ISO8601FormatStyle().format(Date()), cpus: ProcessInfo.processInfo.activeProcessorCount,
            cpuModel: model ?? "unknown", memoryGiB: Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824,
            kernel: kernel, build: build, sealMegabytesPerSecond: try? CryptoSpeed.sealMegabytesPerSecond())
    }
}

/// The loads' parameters.
public struct BenchSettings: Codable, Sendable {
    /// Concurrent stream counts, one measurement point each.
    public var streams: [Int]
    /// Seconds each load runs at each point.
    public var seconds: Double
    /// Bytes per request and per response in the request/response load.
    public var messageSize: Int
    /// The long-path profile, if any: round-trip time added between the two ends of each route.
    public var rttMilliseconds: Double?
    /// The long path's bandwidth cap in bytes per second, if any.
    public var bandwidthBytesPerSecond: Double?
    /// The emulated path between two network namespaces, if any (instead of `rttMilliseconds`' relay).
    public var path: EmulatedPathShape?
    /// The links tcptunnel's local agent keeps to its remote agent (`--links`).
    public var tcptunnelLinks: Int
    /// Response sizes of the responses load, in bytes (empty: no responses load).
    public var responseSizes: [Int]
    /// Keep-alive connection counts of the responses load.
    public var responseConnections: [Int]
    /// Client counts of the many-clients load (empty: no such load).
    public var clientCounts: [Int]
    /// Flow counts of the request/response datagram load, on the routes that carry UDP (empty: no UDP loads).
    public var datagramFlows: [Int]
    /// Outages the outage load makes on each route with a link (0: no such load).
    public var outages: Int = 0
    /// Seconds each outage black-holes the emulated path (across it; on loopback the connection is killed).
    public var outageSeconds: Double = 10

    public init(
        streams: [Int], seconds: Double, messageSize: Int, rttMilliseconds: Double?, bandwidthBytesPerSecond: Double?,
        path: EmulatedPathShape? = nil, tcptunnelLinks: Int = 1, responseSizes: [Int] = [],
        responseConnections: [Int] = [], clientCounts: [Int] = [], datagramFlows: [Int] = []
    ) {
        self.datagramFlows = datagramFlows
        self.tcptunnelLinks = tcptunnelLinks
        self.responseSizes = responseSizes
        self.responseConnections = responseConnections
        self.clientCounts = clientCounts
        self.streams = streams
        self.seconds = seconds
        self.messageSize = messageSize
        self.rttMilliseconds = rttMilliseconds
        self.bandwidthBytesPerSecond = bandwidthBytesPerSecond
        self.path = path
    }
}

/// One route's measurements.
public struct RouteReport: Codable, Sendable {
    /// Short name, e.g. `ssh -L`.
    public var name: String
    /// What exactly ran, e.g. the cipher.
    public var detail: String
    public var points: [PointReport] = []
    /// The responses load: one entry per response size and connection count.
    public var responses: [ResponseReport] = []
    /// The many-clients load: one entry per client count.
    public var manyClients: [ClientsReport] = []
    /// Whether every byte sent before a half-close came back, and how many did.
    public var halfClose: HalfCloseReport?
    /// The UDP loads, on a route that carries UDP.
    public var datagrams: DatagramsReport?
    /// The outage load, on a route with a link.
    public var outages: OutageReport?
    /// Why the route could not be measured (then `points` may be incomplete).
    public var failure: String?
}

/// The measurements at one concurrent stream count.
public struct PointReport: Codable, Sendable {
    public var streams: Int
    public var bulk: BulkReport
    public var requests: RequestReport
    public var connects: ConnectReport
    public var interactive: InteractiveReport
    /// CPU seconds of all the route's processes per GB of payload carried during the bulk load
    /// (both directions counted); nil for the direct route, which has no processes.
    public var cpuSecondsPerGB: Double?
    /// CPU microseconds of all the route's processes per connection during the connection load.
    public var cpuMicrosecondsPerConnection: Double?
    /// The route's process(es) next to the client and next to the target.
    public var local: ProcessUsage?
    public var remote: ProcessUsage?
}

/// Bulk echo: every stream sends for the load's duration and reads all of it back, verified.
public struct BulkReport: Codable, Sendable {
    /// Payload MB (10^6 bytes) per second in each direction, all streams together.
    public var megabytesPerSecond: Double
    /// Payload bytes sent (and, when verified, received) in each direction.
    public var bytes: Int
    public var seconds: Double
    /// Whether every stream got back exactly the bytes it sent.
    public var verified: Bool
    /// Streams that failed, and the first failure.
    public var failedStreams: Int
    public var firstFailure: String?
}

/// Small request/response round trips on every stream at once.
public struct RequestReport: Codable, Sendable {
    public var requestsPerSecond: Double
    public var count: Int
    public var p50Microseconds: Double
    public var p99Microseconds: Double
    public var failedStreams: Int
    public var firstFailure: String?
}

/// Responses of one size on keep-alive connections, each asked for by a small request.
public struct ResponseReport: Codable, Sendable {
    /// Bytes per response.
    public var size: Int
    public var connections: Int
    public var responsesPerSecond: Double
    /// Response bytes per second (10^6), all connections together.
    public var megabytesPerSecond: Double
    public var count: Int
    /// From the request's send to the response's last byte.
    public var p50Microseconds: Double
    public var p99Microseconds: Double
    public var failedConnections: Int
    public var firstFailure: String?
}

/// Many clients of small request/response round trips, driven by one event-driven thread.
public struct ClientsReport: Codable, Sendable {
    public var clients: Int
    public var requestsPerSecond: Double
    public var count: Int
    public var p50Microseconds: Double
    public var p99Microseconds: Double
    /// Context switches (voluntary and involuntary) of every thread of the route's processes, both sides
    /// together, per request; nil for the direct route, which has no processes.
    public var contextSwitchesPerRequest: Double?
    /// CPU microseconds of the route's processes, both sides together, per request; nil for the direct route.
    public var cpuMicrosecondsPerRequest: Double?
    public var failure: String?
}

/// New connections, each with one request/response round trip and a clean close, from every stream's thread
/// at once.
public struct ConnectReport: Codable, Sendable {
    public var connectionsPerSecond: Double
    public var count: Int
    public var failures: Int
    public var firstFailure: String?
    /// From connect(2) to the whole first response, over the connections that completed.
    public var firstResponseP50Microseconds: Double
    public var firstResponseP99Microseconds: Double
}

/// One request/response stream beside as many bulk streams as the point has, on the same route: how long an
/// interactive user waits while others fill the path.
public struct InteractiveReport: Codable, Sendable {
    /// Bulk streams running beside the interactive one.
    public var bulkStreams: Int
    /// The interactive stream's round trips.
    public var requests: RequestReport
    /// The bulk streams' throughput meanwhile.
    public var bulk: BulkReport
}

/// Peak memory, peak threads and CPU time of the processes on one side of a route.
public struct ProcessUsage: Codable, Sendable {
    public var peakRSSBytes: Int
    public var peakThreads: Int
    public var cpuSeconds: Double
}

/// What came back after the client sent a block and half-closed its connection.
public struct HalfCloseReport: Codable, Sendable {
    public var sent: Int
    public var receivedBeforeEnd: Int
    public var intact: Bool
}

/// Many concurrent idle streams through one link.
public struct HoldReport: Codable, Sendable {
    public var requested: Int
    /// Streams that answered a round trip while all of them were open.
    public var usable: Int
    public var secondsToOpen: Double
    public var local: ProcessUsage?
    public var remote: ProcessUsage?
    public var firstFailure: String?
}
