/// The tunables shared by both agents. `validate()` names the first bad field.
public struct TunnelSettings: Sendable, Equatable {
    /// The receive window each stream starts with and grows back to, in bytes. Bulk throughput of one
    /// stream is at most window ÷ round-trip time, so 1 MiB gives 100 MB/s across 10 ms and 10 MB/s across 100 ms.
    public var streamWindow: Int = 1024 * 1024
    /// The largest receive window a stream may auto-tune to when its window, not the path, limits it (a long,
    /// fast path): 16 MiB carries 160 MB/s across 100 ms. Growth also stops when the link's budget is spent.
    public var maxStreamWindow: Int = 16 * 1024 * 1024
    /// All streams of one link together never hold more than this much unconsumed received data
    /// (beyond `Limits.minimumStreamWindow` per stream once it is spent).
    public var linkReceiveBudget: Int = 64 * 1024 * 1024
    /// All streams of all this agent's links together never hold more than this much unconsumed received data
    /// (beyond `Limits.minimumStreamWindow` per stream once it is spent): however many links key holders open,
    /// the agent's memory for slow readers stays bounded.
    public var agentReceiveBudget: Int = 256 * 1024 * 1024
    /// Bytes of DATA frames the writer queue holds before stream threads wait for it.
    public var outboundQueueBytes: Int = 4 * 1024 * 1024
    /// Seconds a peer has to complete the handshake.
    public var handshakeTimeout: Double = 10
    /// Remote agent: connections waiting for their hello at once. Each costs a descriptor and a few hundred bytes
    /// of the agent's memory (at most 1.1 KiB more while its hello arrives) and no thread, so 10,000 of them fit a
    /// small VPS; with silent connections held 5 to 15 s, that outlasts a flood of hundreds of new connections a
    /// second. When full, an old pending connection is shed to admit each new one.
    public var maxPending: Int = 10_000
    /// Remote agent: connections waiting for their hello at once from one IPv4 address or IPv6 /64, so that one
    /// host cannot take every slot. A real agent's hello follows its connect within one round trip, so even many
    /// agents behind one NAT seldom have more than a few pending.
    public var maxPendingPerSource: Int = 64
    /// Local agent: seconds a SOCKS5 client has for its whole handshake (greeting, authentication, request).
    public var socksHandshakeTimeout: Double = 10
    /// Seconds the remote agent waits for the target to accept a connection.
    public var connectTimeout: Double = 10
    /// Seconds of silence after which a link sends PING.
    public var keepaliveInterval: Double = 15
    /// Seconds without receiving anything after which a link is declared dead.
    public var deadLinkTimeout: Double = 45
    /// Seconds a new client waits for the link to come up before it is closed.
    public var linkWaitTimeout: Double = 10
    /// Streams one agent runs at once. Each costs two threads and one descriptor on each agent; clients beyond
    /// it are refused (the remote agent answers RESET) and counted.
    public var maxStreams: Int = 4096
    /// Seconds a client or target may accept no bytes before its stream is reset, so that a peer that stops
    /// reading cannot hold a thread forever. 0 waits forever.
    public var writeTimeout: Double = 120
    /// Seconds a stream may carry no byte in either direction before it is reset. 0 (the default) never.
    public var idleTimeout: Double = 0
    /// Seconds a stopping agent lets streams in flight finish before it resets them.
    public var drainTimeout: Double = 10
    /// Seconds a UDP flow may carry no datagram either way before it ends. 60 s: longer than the keepalives of
    /// UDP protocols that hold a flow open (WireGuard's 25 s, QUIC's and most NATs' 30 s), so a kept-alive flow
    /// lives on; short enough that one-shot flows (a DNS question from a fresh port) give their slot back within
    /// a minute. A flow ended early only costs its client's next datagram a new flow.
    public var udpIdleTimeout: Double = 60
    /// UDP flows one agent keeps at once. Each costs a socket, and on the remote agent a thread, so 4,096 fit a
    /// small VPS; at the cap, a flow idle for 5 s or more is ended for a new one, else the new one is refused.
    public var maxUDPFlows: Int = 4096
    /// UDP flows at once from one source: one client address on the local agent, one local agent's address on
    /// the remote agent. DNS clients use a fresh port per question, so one busy host holds many short flows.
    public var maxUDPFlowsPerSource: Int = 1024
    /// Seconds a link that lost its connection keeps its streams while the local agent connects again and
    /// continues the session (docs/PROTOCOL.md §10); past it, they are reset. 0 resets them at once, as before
    /// sessions could resume. 120 s: a connection reset by a middlebox, a NAT that forgot it or a dead-link
    /// timeout is back within seconds, a phone's change of network or a home router's restart within one to two
    /// minutes; much longer, and most clients' own timeouts have given up while the remote agent still holds
    /// their targets' connections.
    public var resumeTimeout: Double = 120
    /// Remote agent: sessions it holds at once while they wait to resume. When one more would exceed it (or
    /// `maxDetachedBytes`), the one that has waited longest is ended (its streams reset) to make room.
    public var maxDetachedSessions: Int = 256
    /// Remote agent: bytes the waiting sessions hold at once, in frames kept to send again and data queued for
    /// their local agents.
    public var maxDetachedBytes: Int = 256 * 1024 * 1024
    /// Local agent: seconds after which a link moves to a fresh connection, continuing its session without
    /// resetting a stream, for paths that throttle or freeze long connections; drawn anew each time between 90
    /// and 100 % of it, so that connections do not all last one telling length. 0 (the default) never.
    public var linkMaxAge: Double = 0
    /// Local agent: bytes (sealed, both directions) after which a link moves to a fresh connection, for paths
    /// that freeze a connection after so many bytes. 0 (the default) never.
    public var linkMaxBytes: Int = 0
    /// The PROXY protocol header the agent that connects a stream's target (the remote agent; the local agent
    /// for reverse forwards) sends it first, naming the client; `nil` (the default) sends none.
    public var proxyProtocol: ProxyProtocolVersion?

    /// The defaults.
    public init() {}

    /// What a link and its streams use of these settings.
    var link: LinkSettings {
        LinkSettings(
            streamWindow: streamWindow, maxStreamWindow: maxStreamWindow, linkReceiveBudget: linkReceiveBudget,
            outboundQueueBytes: outboundQueueBytes, keepaliveInterval: keepaliveInterval,
            deadLinkTimeout: deadLinkTimeout, writeTimeout: writeTimeout, idleTimeout: idleTimeout,
            resumeTimeout: resumeTimeout)
    }

    /// The upper bounds of the settings, each far above any use and low enough that no deadline, socket timeout
    /// or budget computed from it can overflow (a finite number of seconds is all `validate()` checks below).
    public enum Bounds {
        /// Handshake, connect and SOCKS handshake timeouts: a handshake that takes longer has failed.
        public static let handshakeSeconds: Double = 300
        /// The keepalive interval, the link wait timeout and the drain timeout.
        public static let linkSeconds: Double = 3_600
        /// The dead-link timeout: a day of silence.
        public static let deadLinkSeconds: Double = 86_400
        /// The write and idle timeouts (0 turns them off): a week.
        public static let streamSeconds: Double = 604_800
        /// A stream's window, and its largest: windows travel in 32-bit fields, and half of that keeps the sum of
        /// a window and its credit in range.
        public static let windowBytes = Int(UInt32.max / 2)
        /// One link's receive budget, and the agent's: 64 GiB.
        public static let linkBudgetBytes = 64 << 30
        /// Streams at once, and connections pending their hello at once: a million.
        public static let count = 1_000_000
    }

    /// Throws `SettingsError` naming the first field that is out of range.
    public func validate() throws(SettingsError) {
        guard streamWindow >= Limits.minimumStreamWindow, streamWindow <= Bounds.windowBytes else {
            throw SettingsError(
                field: "stream window", reason: "must be from \(Limits.minimumStreamWindow) bytes to 2 GiB")
        }
        guard maxStreamWindow >= streamWindow, maxStreamWindow <= Bounds.windowBytes else {
            throw SettingsError(field: "max stream window", reason: "must be from the stream window to 2 GiB")
        }
        guard linkReceiveBudget >= streamWindow, linkReceiveBudget <= Bounds.linkBudgetBytes else {
            throw SettingsError(field: "link receive budget", reason: "must be from the stream window to 64 GiB")
        }
        guard agentReceiveBudget >= streamWindow, agentReceiveBudget <= Bounds.linkBudgetBytes else {
            throw SettingsError(field: "agent receive budget", reason: "must be from the stream window to 64 GiB")
        }
        guard outboundQueueBytes >= Limits.maxSealedFrame else {
            throw SettingsError(field: "outbound queue", reason: "must hold at least one frame")
        }
        for (name, value, maximum) in [
            ("handshake timeout", handshakeTimeout, Bounds.handshakeSeconds),
            ("connect timeout", connectTimeout, Bounds.handshakeSeconds),
            ("SOCKS handshake timeout", socksHandshakeTimeout, Bounds.handshakeSeconds),
            ("keepalive interval", keepaliveInterval, Bounds.linkSeconds),
            ("link wait timeout", linkWaitTimeout, Bounds.linkSeconds),
            ("dead-link timeout", deadLinkTimeout, Bounds.deadLinkSeconds),
        ] where !(value > 0 && value <= maximum) {
            throw SettingsError(
                field: name, reason: Self.outOfRange(value, allowed: "more than 0 and at most \(Int(maximum)) seconds"))
        }
        for (name, value, maximum) in [
            ("write timeout", writeTimeout, Bounds.streamSeconds), ("idle timeout", idleTimeout, Bounds.streamSeconds),
            ("drain timeout", drainTimeout, Bounds.linkSeconds), ("resume timeout", resumeTimeout, Bounds.linkSeconds),
            ("link max age", linkMaxAge, Bounds.deadLinkSeconds),
        ] where !(value >= 0 && value <= maximum) {
            throw SettingsError(
                field: name, reason: Self.outOfRange(value, allowed: "from 0 to \(Int(maximum)) seconds"))
        }
        guard (1...Bounds.count).contains(maxStreams) else {
            throw SettingsError(field: "max streams", reason: "must be from 1 to \(Bounds.count)")
        }
        guard udpIdleTimeout > 0, udpIdleTimeout <= Bounds.streamSeconds else {
            throw SettingsError(
                field: "UDP idle timeout",
                reason: Self.outOfRange(
                    udpIdleTimeout, allowed: "more than 0 and at most \(Int(Bounds.streamSeconds)) seconds"))
        }
        guard (1...Bounds.count).contains(maxUDPFlows) else {
            throw SettingsError(field: "max UDP flows", reason: "must be from 1 to \(Bounds.count)")
        }
        guard maxUDPFlowsPerSource >= 1, maxUDPFlowsPerSource <= maxUDPFlows else {
            throw SettingsError(field: "max UDP flows per source", reason: "must be from 1 to --max-udp-flows")
        }
        guard (1...Bounds.count).contains(maxPending) else {
            throw SettingsError(field: "max pending", reason: "must be from 1 to \(Bounds.count)")
        }
        guard maxPendingPerSource >= 1, maxPendingPerSource <= maxPending else {
            throw SettingsError(field: "max pending per source", reason: "must be from 1 to --max-pending")
        }
        guard (1...Bounds.count).contains(maxDetachedSessions) else {
            throw SettingsError(field: "max detached sessions", reason: "must be from 1 to \(Bounds.count)")
        }
        guard maxDetachedBytes >= 0, maxDetachedBytes <= Bounds.linkBudgetBytes else {
            throw SettingsError(field: "max detached bytes", reason: "must be from 0 to 64 GiB")
        }
        guard linkMaxBytes == 0 || linkMaxBytes >= Limits.minimumRotationBytes else {
            throw SettingsError(
                field: "link max bytes", reason: "must be 0 (never) or at least \(Limits.minimumRotationBytes) bytes")
        }
        guard linkMaxAge == 0 || linkMaxAge >= Limits.minimumRotationAge else {
            throw SettingsError(
                field: "link max age", reason: "must be 0 (never) or at least \(Int(Limits.minimumRotationAge)) seconds"
            )
        }
        guard deadLinkTimeout > keepaliveInterval else {
            throw SettingsError(
                field: "dead-link timeout",
                reason:
                    "must be longer than --keepalive (\(Self.seconds(keepaliveInterval)) s; it is \(Self.seconds(deadLinkTimeout)) s)"
            )
        }
    }
}

extension TunnelSettings {
    /// Why `value` seconds is not `allowed`, in words: a negative time is said to be one.
    fileprivate static func outOfRange(_ value: Double, allowed: String) -> String {
        value < 0
            ? "cannot be negative (\(seconds(value)) given); give \(allowed)"
            : "must be \(allowed) (\(seconds(value)) given)"
    }

    /// `value` seconds as a message writes them: `60`, or `2.5`.
    fileprivate static func seconds(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

/// A setting out of its allowed range.
public struct SettingsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The setting's name as the user knows it.
    public let field: String
    /// The allowed range.
    public let reason: String

    public var description: String { "\(field) \(reason)" }
}
