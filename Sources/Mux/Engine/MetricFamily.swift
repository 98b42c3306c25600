/// One family of the numbers an agent reports (README, "Metrics"): its Prometheus name, kind and help text. The
/// one place each family is named: metrics are made with `name` as their swift-metrics label, and an exporter
/// takes the help text from here by that label.
public struct MetricFamily: Sendable, Hashable {
    /// How Prometheus reads the family's samples.
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    /// The family's name, as exported.
    public let name: String
    public let kind: Kind
    /// One sentence on what it measures, for `# HELP`.
    public let help: String

    init(_ name: String, _ kind: Kind, _ help: String) {
        self.name = name
        self.kind = kind
        self.help = help
    }

    /// Every family an agent exports, in the README's order.
    public static let all: [MetricFamily] = [
        buildInfo, linksUp, linkUp, linkInfo, linkReconnects, linkResumptions, sessionsDetached, sessionsLost,
        linkRoundTrip, linkBytes, streamsActive, streamsOpened, streamOpenSeconds, streamsRefused, streamsReset,
        streamBytes, forwardBytes, handshakeFailures, connectionsRejected, handshakesPending, coverRelays,
        udpFlows, udpFlowsOpened, udpFlowsRefused, udpFlowsEvicted, udpDatagrams, udpBytes, udpDropped,
        reloads, lastReloadSuccessful, lastReloadSuccessTime, threads, processCPU, processResidentMemory,
        processVirtualMemory, processOpenFDs, processMaxFDs, processStartTime,
    ]

    private static let byName = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// The family named `name`, if an agent exports one.
    public static func named(_ name: String) -> MetricFamily? { byName[name] }
}

extension MetricFamily {
    package static let buildInfo = MetricFamily(
        "tcptunnel_build_info", .gauge, "Always 1; its labels name the agent's version and protocol version.")
    package static let linksUp = MetricFamily("tcptunnel_links_up", .gauge, "Links up now.")
    package static let linkUp = MetricFamily(
        "tcptunnel_link_up", .gauge, "Local agent: 1 while link number `link` to `remote` is up, else 0.")
    package static let linkInfo = MetricFamily(
        "tcptunnel_link_info", .gauge,
        "1 for each link; its `key` label is the fingerprint of the key it authenticated with.")
    package static let linkReconnects = MetricFamily(
        "tcptunnel_link_reconnects_total", .counter, "Links established since the start, after the first.")
    package static let linkResumptions = MetricFamily(
        "tcptunnel_link_resumptions_total", .counter, "Links whose session continued on a new connection.")
    package static let sessionsDetached = MetricFamily(
        "tcptunnel_sessions_detached", .gauge,
        "Remote agent: sessions waiting now for their local agent to resume them.")
    package static let sessionsLost = MetricFamily(
        "tcptunnel_sessions_lost_total", .counter, "Sessions that ended because they could not resume, by reason.")
    package static let linkRoundTrip = MetricFamily(
        "tcptunnel_link_rtt_seconds", .gauge, "Each link's round-trip time, as its last PING measured it.")
    package static let linkBytes = MetricFamily(
        "tcptunnel_link_bytes_total", .counter,
        "Bytes each link's connections sent and received on the wire, sealed and framed.")
    package static let streamsActive = MetricFamily("tcptunnel_streams_active", .gauge, "Streams running now.")
    package static let streamsOpened = MetricFamily(
        "tcptunnel_streams_opened_total", .counter, "Streams established (their OPEN answered), in either direction.")
    package static let streamOpenSeconds = MetricFamily(
        "tcptunnel_stream_open_seconds", .histogram,
        "How long the streams this agent opened and the far agent established waited for OPEN_OK (its connect).")
    package static let streamsRefused = MetricFamily(
        "tcptunnel_streams_refused_total", .counter,
        "Streams refused when opened, by this agent or its peer, by reason.")
    package static let streamsReset = MetricFamily(
        "tcptunnel_streams_reset_total", .counter,
        "Established streams that ended with a reset instead of FINs, by reason.")
    package static let streamBytes = MetricFamily(
        "tcptunnel_stream_bytes_total", .counter, "Stream payload bytes carried, by direction.")
    package static let forwardBytes = MetricFamily(
        "tcptunnel_forward_bytes_total", .counter,
        "Local agent: stream payload bytes carried for each forward, by direction.")
    package static let handshakeFailures = MetricFamily(
        "tcptunnel_handshake_failures_total", .counter, "Link handshakes that failed, by reason.")
    package static let connectionsRejected = MetricFamily(
        "tcptunnel_connections_rejected_total", .counter,
        "Remote agent: connections closed before they authenticated, by reason.")
    package static let handshakesPending = MetricFamily(
        "tcptunnel_handshakes_pending", .gauge, "Remote agent: connections waiting for their hello now.")
    package static let coverRelays = MetricFamily(
        "tcptunnel_cover_relays", .gauge,
        "Remote agent of the TLS transport: strangers' connections relayed to the cover now.")
    package static let udpFlows = MetricFamily("tcptunnel_udp_flows", .gauge, "UDP flows open now.")
    package static let udpFlowsOpened = MetricFamily(
        "tcptunnel_udp_flows_opened_total", .counter, "UDP flows opened, from either side.")
    package static let udpFlowsRefused = MetricFamily(
        "tcptunnel_udp_flows_refused_total", .counter, "UDP flows refused, by this agent or its peer, by reason.")
    package static let udpFlowsEvicted = MetricFamily(
        "tcptunnel_udp_flows_evicted_total", .counter, "UDP flows ended at a cap to make room for a new one.")
    package static let udpDatagrams = MetricFamily(
        "tcptunnel_udp_datagrams_total", .counter, "UDP datagrams carried, by direction.")
    package static let udpBytes = MetricFamily(
        "tcptunnel_udp_bytes_total", .counter, "Payload bytes of the UDP datagrams carried, by direction.")
    package static let udpDropped = MetricFamily(
        "tcptunnel_udp_dropped_total", .counter, "UDP datagrams dropped instead of delivered, by reason.")
    package static let reloads = MetricFamily(
        "tcptunnel_config_reloads_total", .counter, "Reloads (SIGHUP) since the start, by result.")
    package static let lastReloadSuccessful = MetricFamily(
        "tcptunnel_config_last_reload_successful", .gauge,
        "1 if the last reload applied all of its configuration (or none was asked), 0 if not (refused, or a part such as a port could not be had)."
    )
    package static let lastReloadSuccessTime = MetricFamily(
        "tcptunnel_config_last_reload_success_timestamp_seconds", .gauge,
        "When the configuration in force was applied: the start, or the last reload that succeeded (Unix time).")
    package static let threads = MetricFamily("tcptunnel_threads", .gauge, "Threads of the agent process.")
    package static let processCPU = MetricFamily(
        "process_cpu_seconds_total", .counter, "CPU time the process has used, user and system, in seconds.")
    package static let processResidentMemory = MetricFamily(
        "process_resident_memory_bytes", .gauge, "Resident memory of the process, in bytes.")
    package static let processVirtualMemory = MetricFamily(
        "process_virtual_memory_bytes", .gauge, "Virtual memory of the process, in bytes.")
    package static let processOpenFDs = MetricFamily(
        "process_open_fds", .gauge, "File descriptors the process has open.")
    package static let processMaxFDs = MetricFamily(
        "process_max_fds", .gauge, "The most file descriptors the process may open (its soft limit).")
    package static let processStartTime = MetricFamily(
        "process_start_time_seconds", .gauge, "When the process started (Unix time).")
}
