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
    /// How long the streams this agent opened waited for their OPEN's answer.
    let streamOpenTime: Timer
    /// Payload bytes on their way to targets: read from clients, or written to targets.
    let bytesToTarget: Counter
    /// Payload bytes on their way to clients: read from targets, or written to clients.
    let bytesToClient: Counter
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
    private let sessionsLost: [SessionLoss: Counter]
    private let rejections: [HandshakeRejection: Counter]
    private let handshakeFailures: [String: Counter]
    private let refusals: [ResetReason: Counter]
    private let resets: [ResetReason: Counter]
    /// What the agents and tests read back: refusals, rejections and session losses, by family and label.
    private let counts = Locked<[String: Int]>([:])
    /// How many links use each set of a link's own metrics, by their labels.
    private let linkMetricUsers = Locked<[String: Int]>([:])

    /// Metrics made by `factory`: swift-metrics' global one by default, or one of the caller's, so that several
    /// agents in one process keep their numbers apart. Every family without labels of its own (a link's, a
    /// forward's) exists from the start, each reason at 0.
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        linksUp = Gauge(label: MetricFamily.linksUp.name, factory: factory)
        linkReconnects = Counter(label: MetricFamily.linkReconnects.name, factory: factory)
        streamsActive = Gauge(label: MetricFamily.streamsActive.name, factory: factory)
        streamsOpened = Counter(label: MetricFamily.streamsOpened.name, factory: factory)
        streamOpenTime = Timer(label: MetricFamily.streamOpenSeconds.name, factory: factory)
        bytesToTarget = Counter(
            label: MetricFamily.streamBytes.name, dimensions: [("direction", "to_target")], factory: factory)
        bytesToClient = Counter(
            label: MetricFamily.streamBytes.name, dimensions: [("direction", "to_client")], factory: factory)
        handshakesPending = Gauge(label: MetricFamily.handshakesPending.name, factory: factory)
        coverRelays = Gauge(label: MetricFamily.coverRelays.name, factory: factory)
        datagrams = DatagramMetrics(factory: factory)
        resumptions = Counter(label: MetricFamily.linkResumptions.name, factory: factory)
        sessionsDetached = Gauge(label: MetricFamily.sessionsDetached.name, factory: factory)
        sessionsLost = Counter.family(
            MetricFamily.sessionsLost.name, by: "reason", of: SessionLoss.allCases, factory: factory, name: \.rawValue)
        rejections = Counter.family(
            MetricFamily.connectionsRejected.name, by: "reason", of: HandshakeRejection.allCases, factory: factory,
            name: \.metricLabel)
        handshakeFailures = Counter.family(
            MetricFamily.handshakeFailures.name, by: "reason", of: Self.handshakeFailureReasons, factory: factory,
            name: { $0 })
        refusals = Counter.family(
            MetricFamily.streamsRefused.name, by: "reason", of: ResetReason.allCases, factory: factory,
            name: \.metricLabel)
        resets = Counter.family(
            MetricFamily.streamsReset.name, by: "reason", of: ResetReason.allCases, factory: factory,
            name: \.metricLabel)
        handshakesPending.record(0)
        sessionsDetached.record(0)
        linksUp.record(0)
        streamsActive.record(0)
    }

    /// Why a handshake failed, as the label of `tcptunnel_handshake_failures_total`: on a remote agent, the
    /// rejections that are failures (README, "Metrics"); on a local agent, what became of its hello.
    private static let handshakeFailureReasons =
        HandshakeRejection.allCases.filter(\.isFailure).map(\.metricLabel)
        + ["no_reply", "unexpected_reply", "answered_as_cover", "reply_not_authentic"]

    private func count(_ family: MetricFamily, _ label: String) {
        counts.withLock { $0["\(family.name)/\(label)", default: 0] += 1 }
    }

    private func counted(_ family: MetricFamily, _ label: String) -> Int {
        counts.withLock { $0["\(family.name)/\(label)"] ?? 0 }
    }

    /// Counts a stream refused for `reason`: by this agent, or by its peer for a stream it opened.
    package func recordRefusal(_ reason: ResetReason) {
        count(.streamsRefused, reason.metricLabel)
        refusals[reason]!.increment()
    }

    /// Counts an established stream that ended with a reset for `reason` instead of FINs.
    func recordReset(_ reason: ResetReason) {
        resets[reason]!.increment()
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
        count(.sessionsLost, reason.rawValue)
        sessionsLost[reason]!.increment()
    }

    /// Sessions that ended without resuming for `reason` since the start.
    package func sessionLosses(_ reason: SessionLoss) -> Int { counted(.sessionsLost, reason.rawValue) }

    /// Counts a connection the remote agent closed before it authenticated. All but health checks and shed
    /// connections are also handshake failures.
    func recordRejection(_ reason: HandshakeRejection) {
        count(.connectionsRejected, reason.metricLabel)
        rejections[reason]!.increment()
        if reason.isFailure { handshakeFailures[reason.metricLabel]!.increment() }
    }

    /// Counts a local agent's link handshake that failed with `error` (one for which `isHandshakeFailure`).
    func recordHandshakeFailure(_ error: LinkError) {
        let label =
            switch error {
            case .noHandshakeReply: "no_reply"
            case .unexpectedReply: "unexpected_reply"
            case .answeredAsCover: "answered_as_cover"
            default: "reply_not_authentic"
            }
        handshakeFailures[label]!.increment()
    }

    /// Connections closed before they authenticated for `reason` since the start.
    func rejections(_ reason: HandshakeRejection) -> Int { counted(.connectionsRejected, reason.metricLabel) }

    /// Streams refused for `reason` since the start.
    func refusals(_ reason: ResetReason) -> Int { counted(.streamsRefused, reason.metricLabel) }

    /// What the link from `peer` (remote agent), which authenticated with the key of fingerprint `key`, and its
    /// streams count: the agent's stream counters, and that link's own, labelled with the peer.
    func linkMetrics(peer: Endpoint, key: String) -> LinkMetrics {
        linkMetrics(dimensions: [("link", "\(peer)")], key: key)
    }

    /// What a local agent's link `number` to `remote` and its streams count, its own labelled with both.
    func linkMetrics(number: Int, remote: Endpoint, key: String) -> LinkMetrics {
        linkMetrics(dimensions: [("link", "\(number)"), ("remote", "\(remote)")], key: key)
    }

    private func linkMetrics(dimensions: [(String, String)], key: String) -> LinkMetrics {
        let info = Gauge(label: MetricFamily.linkInfo.name, dimensions: dimensions + [("key", key)], factory: factory)
        info.record(1)
        let roundTrip = Gauge(label: MetricFamily.linkRoundTrip.name, dimensions: dimensions, factory: factory)
        let bytesSent = Counter(
            label: MetricFamily.linkBytes.name, dimensions: dimensions + [("direction", "sent")], factory: factory)
        let bytesReceived = Counter(
            label: MetricFamily.linkBytes.name, dimensions: dimensions + [("direction", "received")], factory: factory)
        // The backend hands a second link of the same labels the same metrics: removed when the last lets go.
        let labels = (dimensions + [("key", key)]).map { "\($0)=\($1)" }.joined(separator: ",")
        linkMetricUsers.withLock { $0[labels, default: 0] += 1 }
        return LinkMetrics(
            streamsOpened: streamsOpened, streamOpenTime: streamOpenTime, bytesToTarget: bytesToTarget,
            bytesToClient: bytesToClient, datagrams: datagrams, recordReset: { [weak self] in self?.recordReset($0) },
            roundTrip: roundTrip, bytesSent: bytesSent, bytesReceived: bytesReceived, info: info,
            release: { [linkMetricUsers] in
                let isLast = linkMetricUsers.withLock { users in
                    users[labels, default: 1] -= 1
                    if users[labels] == 0 { users[labels] = nil }
                    return users[labels] == nil
                }
                guard isLast else { return }
                for gauge in [info, roundTrip] { gauge.destroy() }
                for counter in [bytesSent, bytesReceived] { counter.destroy() }
            })
    }

    /// A local agent's gauge of whether its link `number` to `remote` is up (1) or not (0).
    func linkUp(number: Int, remote: Endpoint) -> Gauge {
        let gauge = Gauge(
            label: MetricFamily.linkUp.name, dimensions: [("link", "\(number)"), ("remote", "\(remote)")],
            factory: factory)
        gauge.record(0)
        return gauge
    }

    /// The counters of the streams whose clients reach this agent through `forward` (as the user wrote it:
    /// `-L 8080:db:5432`), at 0.
    func forwardBytes(_ forward: String) -> StreamCounters {
        StreamCounters(
            toTarget: Counter(
                label: MetricFamily.forwardBytes.name, dimensions: [("forward", forward), ("direction", "to_target")],
                factory: factory),
            toClient: Counter(
                label: MetricFamily.forwardBytes.name, dimensions: [("forward", forward), ("direction", "to_client")],
                factory: factory))
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
