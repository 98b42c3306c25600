import CoreMetrics

/// Why a datagram was dropped instead of delivered; each is counted (`tcptunnel_udp_dropped_total{reason}`).
package enum DatagramDrop: String, CaseIterable, Sendable {
    /// The link's datagram lane already held `Limits.datagramQueueBytes`: the link cannot take them as fast.
    case queueFull = "queue_full"
    /// It waited for the link's writer longer than `Limits.maxDatagramWait`.
    case stale
    /// No link was up to carry a new flow.
    case noLink = "no_link"
    /// Larger than `Limits.maxDatagram` (only a datagram over IPv6 can be).
    case tooLarge = "too_large"
    /// The socket towards the client or target had no room (its send buffer full): UDP drops, never waits.
    case socketFull = "socket_full"
    /// Its flow was refused (not allowed, name not resolved, too many flows), or had ended.
    case flowRefused = "flow_refused"
    /// It arrived before the target's socket was ready, beyond what a flow holds meanwhile.
    case targetNotReady = "target_not_ready"
    /// The send failed (the target's port was unreachable, the network down).
    case sendFailed = "send_failed"
    /// A SOCKS5 client's datagram that was fragmented (FRAG ≠ 0, which RFC 1928 §7 lets a server drop),
    /// malformed, or sent from another address than its association's client.
    case socksRefused = "socks_refused"
}

/// What an agent counts of its UDP flows (README, "Metrics"): flows, datagrams and bytes each way, and drops and
/// refusals by reason. Every counter exists from the start, at 0. Counting is lock-free on the data path.
package final class DatagramMetrics: Sendable {
    /// Flows open now.
    private let flowsActive: Gauge
    /// Flows opened since the start, from either side.
    private let flowsOpened: Counter
    /// Flows ended to make room for a new one at a cap.
    private let flowsEvicted: Counter
    /// Datagrams on their way to targets: read from clients, or written to targets.
    private let datagramsToTarget: Counter
    /// Datagrams on their way to clients: read from targets, or written to clients.
    private let datagramsToClient: Counter
    /// Their payload bytes.
    private let bytesToTarget: Counter
    private let bytesToClient: Counter
    private let drops: [DatagramDrop: Counter]
    private let refusals: [ResetReason: Counter]
    private let counts = Locked(Counts())

    private struct Counts {
        var drops: [DatagramDrop: Int] = [:]
        var refusals: [ResetReason: Int] = [:]
        var evictions = 0
    }

    /// The counters, made by `factory`.
    init(factory: any MetricsFactory) {
        flowsActive = Gauge(label: "tcptunnel_udp_flows", factory: factory)
        flowsOpened = Counter(label: "tcptunnel_udp_flows_opened_total", factory: factory)
        flowsEvicted = Counter(label: "tcptunnel_udp_flows_evicted_total", factory: factory)
        datagramsToTarget = Counter(
            label: "tcptunnel_udp_datagrams_total", dimensions: [("direction", "to_target")], factory: factory)
        datagramsToClient = Counter(
            label: "tcptunnel_udp_datagrams_total", dimensions: [("direction", "to_client")], factory: factory)
        bytesToTarget = Counter(
            label: "tcptunnel_udp_bytes_total", dimensions: [("direction", "to_target")], factory: factory)
        bytesToClient = Counter(
            label: "tcptunnel_udp_bytes_total", dimensions: [("direction", "to_client")], factory: factory)
        drops = Counter.family(
            "tcptunnel_udp_dropped_total", by: "reason", of: DatagramDrop.allCases, factory: factory, name: \.rawValue)
        refusals = Counter.family(
            "tcptunnel_udp_flows_refused_total", by: "reason", of: Self.refusalReasons, factory: factory,
            name: Self.label)
        flowsActive.record(0)
    }

    /// The reasons a flow is refused for: its target not allowed or not resolved, or a cap reached.
    private static let refusalReasons: [ResetReason] = [.notAllowed, .nameNotResolved, .tooManyStreams, .aborted]

    private static func label(_ reason: ResetReason) -> String {
        reason == .tooManyStreams ? "too_many_flows" : reason.metricLabel
    }

    /// Counts a datagram of `bytes` on its way to the target.
    func countToTarget(bytes: Int) {
        datagramsToTarget.increment()
        bytesToTarget.increment(by: Int64(bytes))
    }

    /// Counts a datagram of `bytes` on its way to the client.
    func countToClient(bytes: Int) {
        datagramsToClient.increment()
        bytesToClient.increment(by: Int64(bytes))
    }

    /// Counts a flow opened, by either side.
    func countOpened() { flowsOpened.increment() }

    /// Sets the gauge of flows open now.
    func recordActive(_ count: Int) { flowsActive.record(count) }

    /// Counts a datagram dropped for `reason`.
    func recordDrop(_ reason: DatagramDrop) {
        counts.withLock { $0.drops[reason, default: 0] += 1 }
        drops[reason]!.increment()
    }

    /// Counts a flow refused for `reason`, by this agent or by its peer.
    func recordRefusal(_ reason: ResetReason) {
        let reason = Self.refusalReasons.contains(reason) ? reason : .aborted
        counts.withLock { $0.refusals[reason, default: 0] += 1 }
        refusals[reason]!.increment()
    }

    /// Counts a flow ended to make room at a cap.
    func recordEviction() {
        counts.withLock { $0.evictions += 1 }
        flowsEvicted.increment()
    }

    /// Datagrams dropped for `reason` since the start.
    package func drops(_ reason: DatagramDrop) -> Int { counts.withLock { $0.drops[reason] ?? 0 } }

    /// Flows refused for `reason` since the start.
    package func refusals(_ reason: ResetReason) -> Int { counts.withLock { $0.refusals[reason] ?? 0 } }

    /// Flows evicted since the start.
    package var evictions: Int { counts.withLock { $0.evictions } }
}
