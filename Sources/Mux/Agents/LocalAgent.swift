import CoreMetrics
import Crypto
import Logging

/// The client-facing end of the tunnel: accepts TCP clients on each of its forwards and carries each one as a
/// stream over a persistent, encrypted link to a remote agent: it keeps `linksPerRemote` links to each remote
/// endpoint, each re-established on its own whenever it fails, and gives each new client the open link with the
/// fewest streams. It also asks each remote agent it reaches to listen for its reverse forwards, and connects
/// the streams those bring back.
///
/// Threads: one accept thread per listening forward; per link, a supervisor thread that connects, reconnects and
/// re-asks for reverse forwards (`LocalAgent+Links.swift`); per client, a thread of its own (see
/// `LocalClients`); per reverse-forward stream, a thread that connects its target and then serves as the uplink.
public final class LocalAgent: LinkDelegate, Sendable {
    /// The addresses this agent listens on, one per forward that listens here (all but `-R`), in order.
    public var listeningEndpoints: [Endpoint] { forwards.withLock { $0.listeners.map(\.socket.endpoint) } }

    /// A reverse forward: the remote agent listens on `listen`; its clients reach `target` from here.
    struct ReverseForward: Hashable {
        let listen: Endpoint
        let target: Endpoint
        /// TCP clients (`-R`), or UDP datagrams (`-R …/udp`).
        let kind: TrafficKind

        /// The reverse forward `forward` is, or `nil` for one that listens here.
        init?(_ forward: Forward) {
            switch forward {
            case .reverse(let listen, let target): (self.listen, self.target, kind) = (listen, target, .tcp)
            case .reverseUDP(let listen, let target): (self.listen, self.target, kind) = (listen, target, .udp)
            case .tunnel, .local, .localUDP, .socks: return nil
            }
        }

        /// The forward as the command line gave it.
        var forward: Forward {
            kind == .tcp ? .reverse(listen: listen, target: target) : .reverseUDP(listen: listen, target: target)
        }
    }

    /// What the agent forwards now; `reconfigure` changes it while the agent runs.
    struct Forwards {
        var listeners: [(forward: Forward, socket: ForwardSocket)] = []
        /// The reverse forwards by the id their LISTEN and their streams carry: 1, 2, … in the order given, and
        /// new ids for those a reload adds, so that an id never changes its meaning while the agent runs.
        var reverse: [UInt32: ReverseForward] = [:]
        /// The byte counters of each TCP reverse forward's streams, made when it is configured (so that they show
        /// at 0 before its first client, and no stream makes them on the link's reader).
        var reverseCounters: [UInt32: StreamCounters] = [:]
        var nextReverseID: UInt32 = 1
        var socksCredentials: SocksCredentials?
    }

    let forwards: Locked<Forwards>
    let key: PreSharedKey
    /// How the links look on the wire.
    let transport: LinkTransport
    let settings: TunnelSettings
    let logger: Logger
    let limiter: StreamLimiter
    /// Received data all links' streams may hold at once (`--agent-budget`).
    let receiveBudget: ReceiveBudget
    /// What this agent counts; see `AgentMetrics`.
    public let metrics: AgentMetrics
    /// Links established so far, for the reconnect counter.
    let linksEstablished = Locked(0)
    /// Every link's slot, and the choice of link for new clients.
    let links: LinkSet
    let clients: LocalClients
    let stopRequested = Completion()
    /// Caps the UDP flows of every `-L …/udp` forward, SOCKS association and `-R …/udp` forward together.
    let flowLimiter: FlowLimiter
    /// Throttles the warning for UDP flows refused at a cap.
    let flowWarnings = LogThrottle()

    /// How often a reverse forward the remote agent could not bind (address in use) is asked for again: the
    /// port may be held by this agent's previous link, which the remote agent may not yet know is dead.
    static let listenRetryInterval = 5.0

    /// Binds every listening forward now (so a port in use fails here) and validates `settings`. Nothing runs
    /// until `start()`, which links `linksPerRemote` times to each of `remotes`, in `transport`'s shape. SOCKS
    /// listeners require `socksCredentials` when given. Counts go to `metrics`.
    public init(
        forwards: [Forward], remotes: [Endpoint], linksPerRemote: Int = 1, key: PreSharedKey,
        transport: LinkTransport = .native, socksCredentials: SocksCredentials? = nil, settings: TunnelSettings,
        metrics: AgentMetrics = AgentMetrics(), logger: Logger
    ) throws(AgentError) {
        precondition(!forwards.isEmpty, "a local agent needs at least one forward")
        precondition(!remotes.isEmpty && linksPerRemote >= 1, "a local agent needs at least one link")
        do {
            try settings.validate()
        } catch {
            throw .invalidSettings(error)
        }
        self.settings = settings
        self.logger = logger
        self.metrics = metrics
        let links = LinkSet(remotes: remotes, linksPerRemote: linksPerRemote)
        self.links = links
        flowLimiter = FlowLimiter(
            limit: settings.maxUDPFlows, perSourceLimit: settings.maxUDPFlowsPerSource, metrics: metrics.datagrams)
        var initial = Forwards(socksCredentials: socksCredentials)
        for forward in forwards {
            do {
                if let socket = try Self.bind(
                    forward, links: links, limiter: flowLimiter, settings: settings, metrics: metrics, logger: logger)
                {
                    initial.listeners.append((forward, socket))
                }
            } catch {
                for (_, bound) in initial.listeners { bound.stop() }
                throw AgentError(error)
            }
            if let reverse = ReverseForward(forward) {
                initial.reverse[initial.nextReverseID] = reverse
                if reverse.kind == .tcp {
                    initial.reverseCounters[initial.nextReverseID] = metrics.forwardBytes(forward.metricLabel)
                }
                initial.nextReverseID += 1
            }
        }
        let forwards = Locked(initial)
        self.forwards = forwards
        self.key = key
        self.transport = transport
        let limiter = StreamLimiter(limit: settings.maxStreams, metrics: metrics)
        self.limiter = limiter
        receiveBudget = ReceiveBudget(bytes: settings.agentReceiveBudget)
        clients = LocalClients(
            links: links, limiter: limiter, flowLimiter: flowLimiter, settings: settings, metrics: metrics,
            logger: logger
        ) { forwards.withLock { $0.socksCredentials } }
    }

    /// A local agent with one link to `remote`.
    public convenience init(
        forwards: [Forward], remote: Endpoint, key: PreSharedKey, socksCredentials: SocksCredentials? = nil,
        settings: TunnelSettings, metrics: AgentMetrics = AgentMetrics(), logger: Logger
    ) throws(AgentError) {
        try self.init(
            forwards: forwards, remotes: [remote], key: key, socksCredentials: socksCredentials, settings: settings,
            metrics: metrics, logger: logger)
    }

    /// A local agent whose clients on `listen` reach the remote agent's default target.
    public convenience init(
        listen: Endpoint, remote: Endpoint, key: PreSharedKey, settings: TunnelSettings, logger: Logger
    ) throws(AgentError) {
        try self.init(forwards: [.tunnel(listen: listen)], remote: remote, key: key, settings: settings, logger: logger)
    }

    /// Starts accepting clients and connecting the link. Returns at once.
    public func start() throws(AgentError) {
        let (listeners, hasCredentials) = forwards.withLock { ($0.listeners, $0.socksCredentials != nil) }
        do {
            for index in 0..<links.count {
                try startThread(named: "link-\(index + 1)") { self.superviseLink(at: index) }
            }
            for (forward, socket) in listeners {
                try startListening(forward, on: socket, hasCredentials: hasCredentials)
            }
        } catch {
            stopRequested.complete()
            for (_, socket) in listeners { socket.stop() }
            throw .resources(error)
        }
        let shape = if case .tls(let serverName) = transport { ", as TLS to \(serverName)" } else { "" }
        logger.info("local agent tunnelling to \(links.summary) (key \(key.fingerprint)\(shape))")
    }

    /// Stops accepting, lets streams in flight finish for up to the drain timeout, then resets the rest and
    /// closes the links cleanly (GOAWAY).
    public func stop() {
        let current = links.stop()
        stopRequested.complete()
        for (_, socket) in forwards.withLock({ $0.listeners }) { socket.stop() }
        clients.endAssociations()
        LinkDrain.run(current, drainTimeout: settings.drainTimeout, logger: logger)
    }

    /// Whether a link that takes new streams is up now.
    public var isLinkUp: Bool { links.links.contains { $0.isOpenForStreams } }

    /// Links that take new streams now.
    public var openLinkCount: Int { links.links.filter(\.isOpenForStreams).count }

    /// Streams running now.
    public var streamCount: Int { limiter.openCount }

    /// Clients refused because `maxStreams` streams were running.
    public var refusedCount: Int { limiter.refusedCount }

    /// Streams refused for `reason` since the start, by the remote agent or (reverse forwards) by this one.
    package func refusedCount(_ reason: ResetReason) -> Int { metrics.refusals(reason) }

    /// The first remote agent's answer for the reverse forward that listens on `listen` there, on the link that
    /// asks for it.
    package func reverseForwardResult(listen: Endpoint) -> ListenResult? {
        guard let id = forwards.withLock({ $0.reverse.first { $0.value.listen == listen }?.key }) else { return nil }
        return reverseForwardResults(forward: id).first
    }

    /// Each remote agent's answer for reverse forward `id`, in slot order, from the links that ask for it.
    package func reverseForwardResults(forward id: UInt32) -> [ListenResult] {
        links.answers(to: id)
    }

    /// Sets the links-up gauge to the links that run on a connection (a draining link still counts; one waiting to
    /// resume does not).
    func recordLinksUp() {
        metrics.linksUp.record(links.links.filter { !$0.isClosed && !$0.isDetached }.count)
    }

    // MARK: LinkDelegate, called on link threads

    func link(_ link: Link, didOpen stream: Stream, to target: StreamTarget, from origin: StreamOrigin?) {
        let (configured, counters) = forwards.withLock { state -> (ReverseForward?, StreamCounters?) in
            guard case .reverseForward(let id) = target else { return (nil, nil) }
            return (state.reverse[id], state.reverseCounters[id])
        }
        guard let forward = configured, forward.kind == .tcp else {
            metrics.recordRefusal(.notAllowed)
            logger.warning("refused stream \(stream.id) to \(target): the remote agent may only open reverse forwards")
            return stream.refuse(.notAllowed)
        }
        StreamAcceptor.start(stream, counting: counters, logger: logger) { [self, settings] in
            let addresses: [ResolvedAddress]
            do {
                addresses = try forward.target.resolve()
            } catch {
                metrics.recordRefusal(.nameNotResolved)
                logger.warning("reverse forward \(forward.listen): \(error)")
                return .failure(.nameNotResolved)
            }
            return StreamAcceptor.connect(
                to: addresses, timeout: settings.connectTimeout, proxyProtocol: settings.proxyProtocol, origin: origin
            ).mapError { error in
                let reason = StreamAcceptor.reason(for: error)
                metrics.recordRefusal(reason)
                logger.warning("reverse forward \(forward.listen): cannot connect to \(forward.target): \(error)")
                return reason
            }
        }
    }

    func link(_ link: Link, didOpenFlow id: FlowID, to target: StreamTarget, from origin: StreamOrigin?) -> ResetReason?
    {
        guard case .reverseForward(let number) = target, let forward = forwards.withLock({ $0.reverse[number] }),
            forward.kind == .udp
        else {
            metrics.datagrams.recordRefusal(.notAllowed)
            logger.warning("refused UDP flow \(id) to \(target): the remote agent may only open UDP reverse forwards")
            return .notAllowed
        }
        return TargetFlow.accept(
            id, on: link, to: target, idleTimeout: settings.udpIdleTimeout, limiter: flowLimiter, logger: logger,
            warnings: flowWarnings
        ) { .resolving(forward.target, verdict: "reverse forward \(forward.listen) (UDP)") }
    }

    func link(_ link: Link, didRequestListen address: Endpoint, kind: TrafficKind, forward: UInt32) {
        preconditionFailure("a link of the local role never receives LISTEN")
    }

    func link(_ link: Link, didCancelListen forward: UInt32) {
        preconditionFailure("a link of the local role never receives UNLISTEN")
    }

    func link(_ link: Link, didAnswerListen forward: UInt32, result: ListenResult, port: UInt16) {
        guard let reverse = forwards.withLock({ $0.reverse[forward] }) else {
            return logger.debug("the remote agent answered LISTEN for reverse forward \(forward), since cancelled")
        }
        let previous = links.record(result, forward: forward, on: link)
        let what = "the remote agent's \(reverse.listen) → \(reverse.target) (-R)"
        switch result {
        case .bound: logger.info("reverse forward up: \(what)")
        case .notAllowed:
            logger.error("reverse forward refused: \(what) is not allowed by the remote agent's --allow-listen rules")
        case .addressInUse, .failed:
            // Asked again every few seconds; said once per link, not at every retry.
            if previous != result {
                logger.warning(
                    "reverse forward not bound: \(what): \(result); asking again every \(Int(Self.listenRetryInterval)) s"
                )
            }
        }
    }

    func linkDidDetach(_ link: Link) {}  // its supervisor sees the connection released, and resumes

    func linkDidClose(_ link: Link, reason: LinkError) {
        recordLinksUp()
        if let loss = SessionLoss(reason) { metrics.recordSessionLoss(loss) }
        logger.log(level: reason.isPlanned ? .info : .warning, "\(link.name) down: \(reason)")
    }
}
