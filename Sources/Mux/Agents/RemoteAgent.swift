import CoreMetrics
import Crypto
import Logging

/// The server-facing end of the tunnel: accepts encrypted links from local agents and, for each stream they
/// open, connects to the target their OPEN names (if its allow list lets it) and relays bytes both ways. For
/// their reverse forwards it listens where its listen rules let it, and opens a stream back for each client.
///
/// Threads: one handshake thread (`HandshakeGate`), which accepts connections and holds each until its hello
/// verifies, for any number of them; per link, a reader and a writer thread; per stream, a thread that connects
/// to the target (or, for a reverse forward, the thread its client was given) and then serves as the stream's
/// uplink thread (see `Stream`); one accept thread per reverse-forward port.
/// `@unchecked Sendable`: immutable configuration plus `links` and `allowList`, each a `Locked`, and `gate` and
/// `reverseListeners`, which guard themselves.
public final class RemoteAgent: LinkDelegate, @unchecked Sendable {
    /// The address local agents connect to.
    public let listeningEndpoint: Endpoint

    private let gate: HandshakeGate
    /// The TLS transport's cover; `nil` for the native transport.
    private let coverShapes: CoverShapes?
    private let trustedBalancers: TrustedBalancers
    /// What streams may reach; `reconfigure` replaces it while the agent runs.
    let allowList: Locked<AllowList>
    let reverseListeners: ReverseListeners
    private let keys: [PreSharedKey]
    let settings: TunnelSettings
    let logger: Logger
    let links = Locked<[ObjectIdentifier: Link]>([:])
    /// The sessions by id, and the ones waiting to resume.
    let sessions: SessionTable
    let limiter: StreamLimiter
    /// Caps the UDP flows of all links together, and per local agent.
    let flowLimiter: FlowLimiter
    /// Received data all links' streams may hold at once (`--agent-budget`), so that key holders opening many
    /// links cannot multiply the link budget.
    let receiveBudget: ReceiveBudget
    let failures = LogThrottle()
    /// What this agent counts; see `AgentMetrics`.
    public let metrics: AgentMetrics
    let refusedListens = Locked(0)
    /// Links accepted so far, for the reconnect counter.
    let linksEstablished = Locked(0)
    /// This agent's instance, drawn at start and sent on every link (AGENT_ID), so that a local agent can
    /// tell its links to this agent from its links to another one behind the same balancer.
    let instanceID = AgentInstance.draw()

    /// Binds `listen` now (so a port in use fails here) and validates `settings`. Nothing runs until `start()`.
    /// Streams reach `allowList`'s default target and what its rules name; reverse forwards may listen where
    /// `listenRules` allow, and nowhere without them. `keys` holds the key local agents use, or two keys while
    /// they move from one to the other (rotation). Connections from `trustedBalancers` start with a PROXY v2
    /// header that names the peer they stand for. With a `cover` (a real HTTPS site), links use the TLS
    /// transport: hellos are answered in the shape of the cover's answers, and other connections are relayed to it.
    public init(
        listen: Endpoint, allowList: AllowList, listenRules: [ListenRule] = [], keys: [PreSharedKey],
        trustedBalancers: TrustedBalancers = .none, cover: Endpoint? = nil, settings: TunnelSettings,
        metrics: AgentMetrics = AgentMetrics(), logger: Logger
    ) throws(AgentError) {
        precondition(!keys.isEmpty, "a remote agent needs a key")
        do {
            try settings.validate()
        } catch {
            throw .invalidSettings(error)
        }
        let socket: Socket
        do {
            socket = try Socket.listen(on: listen)
        } catch {
            throw AgentError(error)
        }
        listeningEndpoint = socket.localEndpoint
        self.allowList = Locked(allowList)
        self.trustedBalancers = trustedBalancers
        reverseListeners = ReverseListeners(rules: listenRules)
        self.keys = keys
        self.settings = settings
        self.logger = logger
        self.metrics = metrics
        limiter = StreamLimiter(limit: settings.maxStreams, metrics: metrics)
        sessions = SessionTable(
            maxDetached: settings.maxDetachedSessions, maxDetachedBytes: settings.maxDetachedBytes)
        flowLimiter = FlowLimiter(
            limit: settings.maxUDPFlows, perSourceLimit: settings.maxUDPFlowsPerSource, metrics: metrics.datagrams)
        receiveBudget = ReceiveBudget(bytes: settings.agentReceiveBudget)
        coverShapes = cover.map { CoverShapes(cover: $0, connectTimeout: settings.connectTimeout, logger: logger) }
        let configuration = HandshakeGate.Configuration(
            keys: keys, handshakeTimeout: settings.handshakeTimeout, maxPending: settings.maxPending,
            maxPendingPerSource: settings.maxPendingPerSource, notBefore: UnixClock.nowMillis(),
            trustedBalancers: trustedBalancers, cover: coverShapes)
        gate = HandshakeGate(listening: socket, configuration: configuration, metrics: metrics, logger: logger)
    }

    /// A remote agent whose streams reach `target` only.
    public convenience init(
        listen: Endpoint, target: Endpoint, keys: [PreSharedKey], settings: TunnelSettings, logger: Logger
    ) throws(AgentError) {
        try self.init(
            listen: listen, allowList: AllowList(defaultTarget: target), keys: keys, settings: settings, logger: logger)
    }

    /// Starts accepting links. Returns at once, or, with the TLS transport, once the cover has answered a probe
    /// (within the connect timeout, twice); throws `.coverUnusable` when it cannot be used.
    public func start() throws(AgentError) {
        if let coverShapes {
            let shape: CoverShape
            do {
                shape = try coverShapes.learnAtStart()
            } catch {
                gate.stop()
                throw .coverUnusable(coverShapes.cover, reason: "\(error)")
            }
            do {
                try coverShapes.start()
            } catch {
                gate.stop()
                throw .resources(error)
            }
            logger.info("links use the TLS transport in the shape of \(coverShapes.cover): \(shape.summary)")
        }
        try gate.start { [weak self] socket, channel, sessionKeys, peer in
            guard let self else { return channel.close() }
            admitConnection(socket, channel: channel, keys: sessionKeys, peer: peer)
        }
        let fingerprints = keys.map(\.fingerprint).joined(separator: ", ")
        let allowList = self.allowList.withLock { $0 }
        logger.info(
            "remote agent \(AgentInstance.text(instanceID)) listening on \(listeningEndpoint), forwarding to \(allowList.defaultTarget) (\(keys.count == 1 ? "key" : "keys") \(fingerprints))"
        )
        if let version = settings.proxyProtocol {
            logger.info("targets are sent a PROXY protocol \(version.rawValue) header naming each client")
        }
        if !trustedBalancers.isEmpty {
            logger.info(
                "connections from \(trustedBalancers.descriptions.joined(separator: ", ")) must start with a PROXY v2 header"
            )
        }
        if !allowList.rules.isEmpty {
            logger.info("local agents may also reach: \(allowList.rules.map(\.description).joined(separator: ", "))")
        }
    }

    /// Asks `cover` how it answers a browser, as an agent of the TLS transport does at start, and says what it
    /// learned (`TLS 1.3, TLS_AES_128_GCM_SHA256, x25519, 4 encrypted records (2,961 bytes)`); throws
    /// `.coverUnusable` with the reason it cannot be a cover.
    public static func describeCover(_ cover: Endpoint, connectTimeout: Double) throws(AgentError) -> String {
        let shapes = CoverShapes(cover: cover, connectTimeout: connectTimeout, logger: Logger(label: "check"))
        do {
            return try shapes.learnAtStart().summary
        } catch {
            throw .coverUnusable(cover, reason: "\(error)")
        }
    }

    /// Stops accepting links, tells every local agent to open no more streams (GOAWAY), lets streams in flight
    /// finish for up to the drain timeout, then resets the rest and closes the links.
    public func stop() {
        gate.stop()
        coverShapes?.stop()
        reverseListeners.releaseAll()
        let current = links.withLock { Array($0.values) }
        LinkDrain.run(current, drainTimeout: settings.drainTimeout, logger: logger)
    }

    /// Replaces what local agents may reach and where they may have this agent listen, while it runs (a
    /// reload). Streams in flight and links are untouched; reverse-forward ports the new listen rules no longer
    /// cover stop listening, and their local agents are told. Returns one line per change.
    public func reconfigure(allowList newList: AllowList, listenRules: [ListenRule]) -> [String] {
        var changes: [String] = []
        let old = allowList.withLock { list in
            defer { list = newList }
            return list
        }
        if old.defaultTarget != newList.defaultTarget { changes.append("default target now \(newList.defaultTarget)") }
        changes += Self.differences(
            from: old.rules.map(\.description), to: newList.rules.map(\.description), added: "allowed ",
            removed: "no longer allowed: ")
        changes += Self.differences(
            from: reverseListeners.rules.map(\.description), to: listenRules.map(\.description),
            added: "listening allowed on ", removed: "listening no longer allowed on ")
        let (stopped, allowed) = reverseListeners.update(rules: listenRules)
        for (address, link, forward) in stopped {
            link.send(.listenResult(forward: forward, .notAllowed, port: 0))
            changes.append("stopped listening on \(address): the new --allow-listen rules do not cover it")
        }
        // Refused before, allowed now: bound and answered at once, without the local agent asking again.
        for refusal in allowed where !refusal.link.isClosed {
            self.link(refusal.link, didRequestListen: refusal.address, kind: refusal.kind, forward: refusal.forward)
            changes.append("\(refusal.address), which \(refusal.link.name) asked for before, is now allowed")
        }
        return changes
    }

    /// One line per rule added or removed, each starting with the phrase given for its kind of change.
    private static func differences(from old: [String], to new: [String], added: String, removed: String)
        -> [String]
    {
        new.filter { !old.contains($0) }.map { added + $0 } + old.filter { !new.contains($0) }.map { removed + $0 }
    }

    /// The number of links up now.
    public var linkCount: Int { links.withLock { $0.count } }

    /// Streams running now, across all links.
    public var streamCount: Int { limiter.openCount }

    /// Streams refused because `maxStreams` streams were running.
    public var refusedCount: Int { limiter.refusedCount }

    /// Streams refused for `reason` (not allowed, or their target could not be connected) since the start.
    package func refusedCount(_ reason: ResetReason) -> Int { metrics.refusals(reason) }

    /// Reverse-forward listen requests refused since the start (not allowed, or the address in use).
    public var refusedListenCount: Int { refusedListens.withLock { $0 } }

    /// Connections turned away before authentication for `reason` since the start.
    package func rejectedCount(_ reason: HandshakeRejection) -> Int { metrics.rejections(reason) }

    // MARK: LinkDelegate, called on link threads

    func link(_ link: Link, didOpen stream: Stream, to target: StreamTarget, from origin: StreamOrigin?) {
        let allowList = self.allowList.withLock { $0 }
        StreamAcceptor.start(stream, logger: link.logger) { [self, settings] in
            let decision = allowList.decide(target)
            if let refusal = decision.refusal {
                metrics.recordRefusal(refusal)
                stream.log(.warning, "stream \(stream.id) to \(target) refused: \(decision.verdict)")
                return .failure(refusal)
            }
            if link.logger.logLevel <= .debug {
                stream.log(.debug, "stream \(stream.id) to \(target): \(decision.verdict)")
            }
            return StreamAcceptor.connect(
                to: decision.addresses, timeout: settings.connectTimeout, proxyProtocol: settings.proxyProtocol,
                origin: origin
            ).mapError { error in
                let reason = StreamAcceptor.reason(for: error)
                metrics.recordRefusal(reason)
                stream.log(.warning, "stream \(stream.id): cannot connect to \(target): \(error)")
                return reason
            }
        }
    }

    func link(_ link: Link, didAnswerListen forward: UInt32, result: ListenResult, port: UInt16) {
        preconditionFailure("a link of the remote role never receives LISTEN_RESULT")
    }

    func linkDidClose(_ link: Link, reason: LinkError) {
        logger.log(level: reason.isPlanned ? .info : .warning, "link from \(link.peer) down: \(reason)")
        if let loss = SessionLoss(reason) { metrics.recordSessionLoss(loss) }
        links.withLock { $0[ObjectIdentifier(link)] = nil }
        sessions.remove(link)
        recordLinksUp()
        for address in reverseListeners.release(for: link) {
            logger.info("stopped listening on \(address): its link is down")
        }
    }
}

extension Logger {
    /// A copy of this logger with one more metadata entry.
    func withMetadata(_ key: String, _ value: String) -> Logger {
        var copy = self
        copy[metadataKey: key] = "\(value)"
        return copy
    }
}
