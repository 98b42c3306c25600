import CoreMetrics

/// The numbers an agent reports (README, "Metrics"), through swift-metrics so that any backend collects them;
/// the command line serves them in Prometheus format. Counting is lock-free on the data path: the counters'
/// handlers are atomics. Gauges are recorded when they change (links, streams) or measured (round trips).
public final class AgentMetrics: Sendable {
    private let factory: any MetricsFactory
    /// Links up now: up to `--links` times the `--remote`s on a local agent, any number on a remote agent.
    let linksUp: Gauge
    /// Links established since the agent started, after its first.
    let linkReconnects: Counter
    /// Streams running now.
    let streamsActive: Gauge
    /// Streams established (their OPEN answered OPEN_OK), in either direction.
    let streamsOpened: Counter
    /// Payload bytes on their way to targets: read from clients, or written to targets.
    let bytesToTarget: Counter
    /// Payload bytes on their way to clients: read from targets, or written to clients.
    let bytesToClient: Counter
    /// Handshakes that failed: connections rejected by a remote agent, links a local agent could not
    /// authenticate.
    let handshakeFailures: Counter
    /// Remote agent: connections waiting for their hello now.
    let handshakesPending: Gauge
    /// Remote agent of the TLS transport: strangers' connections relayed to the cover now.
    let coverRelays: Gauge
    /// What the agent's UDP flows count.
    package let datagrams: DatagramMetrics
    /// Links that continued their session on a new connection (docs/PROTOCOL.md §10).
    private let resumptions: Counter
    private let resumed = Locked(0)
    /// Remote agent: sessions waiting now for their local agent to resume them.
    let sessionsDetached: Gauge
    /// Sessions that ended because they could not resume, by why.
    private let sessionsLost: [SessionLoss: Counter]
    private let sessionLossCounts = Locked<[SessionLoss: Int]>([:])
    private let rejections: [HandshakeRejection: Counter]
    private let rejectionCounts = Locked<[HandshakeRejection: Int]>([:])
    private let refusals: Locked<[ResetReason: (counter: Counter, count: Int)]> = Locked([:])

    /// Metrics made by `factory`: swift-metrics' global one by default, or one of the caller's, so that several
    /// agents in one process keep their numbers apart.
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        linksUp = Gauge(label: "tcptunnel_links_up", factory: factory)
        linkReconnects = Counter(label: "tcptunnel_link_reconnects_total", factory: factory)
        streamsActive = Gauge(label: "tcptunnel_streams_active", factory: factory)
        streamsOpened = Counter(label: "tcptunnel_streams_opened_total", factory: factory)
        bytesToTarget = Counter(
            label: "tcptunnel_stream_bytes_total", dimensions: [("direction", "to_target")], factory: factory)
        bytesToClient = Counter(
            label: "tcptunnel_stream_bytes_total", dimensions: [("direction", "to_client")], factory: factory)
        handshakeFailures = Counter(label: "tcptunnel_handshake_failures_total", factory: factory)
        handshakesPending = Gauge(label: "tcptunnel_handshakes_pending", factory: factory)
        coverRelays = Gauge(label: "tcptunnel_cover_relays", factory: factory)
        datagrams = DatagramMetrics(factory: factory)
        resumptions = Counter(label: "tcptunnel_link_resumptions_total", factory: factory)
        sessionsDetached = Gauge(label: "tcptunnel_sessions_detached", factory: factory)
        sessionsLost = Counter.family(
            "tcptunnel_sessions_lost_total", by: "reason", of: SessionLoss.allCases, factory: factory,
            name: \.rawValue)
        rejections = Counter.family(
            "tcptunnel_connections_rejected_total", by: "reason", of: HandshakeRejection.allCases, factory: factory,
            name: \.metricLabel)
        handshakesPending.record(0)
        sessionsDetached.record(0)
        linksUp.record(0)
        streamsActive.record(0)
    }

    /// Counts a stream refused for `reason`: by this agent, or by its peer for a stream it opened.
    package func recordRefusal(_ reason: ResetReason) {
        refusals.withLock { refusals in
            if refusals[reason] == nil {
                let counter = Counter(
                    label: "tcptunnel_streams_refused_total", dimensions: [("reason", reason.metricLabel)],
                    factory: factory)
                refusals[reason] = (counter, 0)
            }
            refusals[reason]!.count += 1
            refusals[reason]!.counter.increment()
        }
    }

    /// Counts a link that continued its session on a new connection.
    func recordResumption() {
        resumed.withLock { $0 += 1 }
        resumptions.increment()
    }

    /// Links that continued their session on a new connection since the start.
    package var resumptionCount: Int { resumed.withLock { $0 } }

    /// Counts a session that ended without resuming, for `reason`.
    func recordSessionLoss(_ reason: SessionLoss) {
        sessionLossCounts.withLock { $0[reason, default: 0] += 1 }
        sessionsLost[reason]!.increment()
    }

    /// Sessions that ended without resuming for `reason` since the start.
    package func sessionLosses(_ reason: SessionLoss) -> Int { sessionLossCounts.withLock { $0[reason] ?? 0 } }

    /// Counts a connection the remote agent closed before it authenticated. All but health checks and shed
    /// connections are also handshake failures.
    func recordRejection(_ reason: HandshakeRejection) {
        rejectionCounts.withLock { $0[reason, default: 0] += 1 }
        rejections[reason]!.increment()
        if reason != .closedWithoutData && reason != .shed { handshakeFailures.increment() }
    }

    /// Connections closed before they authenticated for `reason` since the start.
    func rejections(_ reason: HandshakeRejection) -> Int {
        rejectionCounts.withLock { $0[reason] ?? 0 }
    }

    /// Streams refused for `reason` since the start.
    func refusals(_ reason: ResetReason) -> Int {
        refusals.withLock { $0[reason]?.count ?? 0 }
    }

    /// What the link from `peer` (remote agent) and its streams count: the agent's stream counters, and a gauge
    /// of that link's round-trip time, labelled with the peer.
    func linkMetrics(peer: Endpoint) -> LinkMetrics {
        linkMetrics(dimensions: [("link", "\(peer)")])
    }

    /// What a local agent's link `number` to `remote` and its streams count, its round trip labelled with both.
    func linkMetrics(number: Int, remote: Endpoint) -> LinkMetrics {
        linkMetrics(dimensions: [("link", "\(number)"), ("remote", "\(remote)")])
    }

    private func linkMetrics(dimensions: [(String, String)]) -> LinkMetrics {
        LinkMetrics(
            streamsOpened: streamsOpened, bytesToTarget: bytesToTarget, bytesToClient: bytesToClient,
            datagrams: datagrams,
            roundTrip: Gauge(label: "tcptunnel_link_rtt_seconds", dimensions: dimensions, factory: factory))
    }

    /// A local agent's gauge of whether its link `number` to `remote` is up (1) or not (0).
    func linkUp(number: Int, remote: Endpoint) -> Gauge {
        let gauge = Gauge(
            label: "tcptunnel_link_up", dimensions: [("link", "\(number)"), ("remote", "\(remote)")],
            factory: factory)
        gauge.record(0)
        return gauge
    }
}

/// Why a session ended without resuming, as the metric `tcptunnel_sessions_lost_total` labels it.
package enum SessionLoss: String, CaseIterable, Sendable {
    /// No new connection continued it within the resume timeout.
    case timeout
    /// Remote agent: it waited longest when the waiting sessions needed room (`--max-detached-sessions`,
    /// `--max-detached-bytes`), or a new link asked for its reverse forward's port.
    case evicted
    /// Local agent: the remote agent no longer held it (it restarted, or ended the session first).
    case unknown

    /// The loss a link's end for `reason` is, if it is one.
    init?(_ reason: LinkError) {
        switch reason {
        case .notResumed: self = .timeout
        case .evicted, .supplanted: self = .evicted
        case .sessionUnknown: self = .unknown
        default: return nil
        }
    }
}
