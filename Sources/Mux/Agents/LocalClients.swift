import Logging

/// A local agent's clients, from the accept thread to their stream: each gets a thread of its own, a SOCKS
/// client negotiates first, then it waits for the link and becomes its stream's uplink (see `Stream`); or, for a
/// SOCKS UDP association, serves its control connection while a relay carries its datagrams
/// (`LocalClients+Associations.swift`).
///
/// Threads: `admit` runs on a forward's accept thread and never blocks; everything else on the client's own
/// thread. At most `Limits.maxSocksHandshakes` clients are negotiating at once, and they hold no stream slot,
/// so clients stalling in their handshake never take the slots other forwards' clients need.
final class LocalClients: Sendable {
    let links: LinkSet
    let limiter: StreamLimiter
    /// Caps the UDP flows of SOCKS associations, with those of the agent's `-L …/udp` forwards.
    let flowLimiter: FlowLimiter
    let settings: TunnelSettings
    let metrics: AgentMetrics
    let logger: Logger
    /// The control connections of the UDP associations running now, so that a stopping agent can end them.
    let associations = Locked(Associations())

    /// The control connections of UDP associations, by descriptor, and whether the agent is stopping.
    struct Associations {
        var controls: [Int32: Socket] = [:]
        var isStopping = false
    }
    /// The SOCKS credentials in force now (a reload may change them).
    private let socksCredentials: @Sendable () -> SocksCredentials?
    let limitWarnings = LogThrottle()
    private let socksHandshakes = SlotCounter(limit: Limits.maxSocksHandshakes, purpose: "SOCKS handshakes in progress")
    let socksWarnings = LogThrottle()

    init(
        links: LinkSet, limiter: StreamLimiter, flowLimiter: FlowLimiter, settings: TunnelSettings,
        metrics: AgentMetrics, logger: Logger, socksCredentials: @escaping @Sendable () -> SocksCredentials?
    ) {
        self.links = links
        self.limiter = limiter
        self.flowLimiter = flowLimiter
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        self.socksCredentials = socksCredentials
    }

    /// Runs on an accept thread, so it must not block: hands `client` of `forward` to a thread of its own. Its
    /// stream counts its bytes into `counters`, the forward's.
    func admit(_ client: Socket, forward: Forward, counting counters: StreamCounters) {
        let target: StreamTarget
        switch forward {
        case .tunnel: target = .defaultTarget
        case .local(_, let endpoint): target = .endpoint(endpoint)
        case .reverse, .reverseUDP, .localUDP: preconditionFailure("\(forward) takes no TCP clients here")
        case .socks:
            return socksHandshakes.admit(client, thread: "socks-client", logger: logger, warnings: socksWarnings) {
                self.negotiate(client, counting: counters)
            }
        }
        limiter.admit(client, thread: "client", logger: logger, warnings: limitWarnings) {
            self.serve(client, to: target, answer: .none, counting: counters)
        }
    }

    /// Runs on a SOCKS client's own thread, holding a SOCKS handshake slot: the handshake, bounded as a whole by
    /// `--socks-handshake-timeout`, then a stream slot, then the stream.
    private func negotiate(_ client: Socket, counting counters: StreamCounters) {
        let server = SocksServer(
            client: client, credentials: socksCredentials(), timeout: settings.socksHandshakeTimeout)
        let negotiated = Result { () throws(SocksServer.Failure) in try server.negotiate() }
        socksHandshakes.release()
        let target: Endpoint
        switch negotiated {
        case .success(.connect(let endpoint)): target = endpoint
        case .success(.associate): return associate(client, server: server)
        case .failure(let error):
            socksWarnings.log(logger, level: .info, "SOCKS client \(client.peerEndpoint): \(error)")
            return client.close()
        }
        guard limiter.tryAcquire() else {
            limitWarnings.log(
                logger, level: .warning, "refused SOCKS client \(client.peerEndpoint): \(limiter.refusal)")
            server.reply(.generalFailure)
            return client.close()
        }
        serve(client, to: .endpoint(target), answer: .socks(server), counting: counters)
    }

    /// Runs on the client's own thread, holding a stream slot. Its frame stays under the stream's relay for the
    /// stream's whole life, so what only a failure needs is kept out of line in the two functions below: every
    /// stream thread then fits its stack in two pages (see `Limits.threadStackSize`).
    private func serve(
        _ client: Socket, to target: StreamTarget, answer: Link.ClientAnswer, counting counters: StreamCounters
    ) {
        let origin = client.origin
        guard let link = links.await(seconds: settings.linkWaitTimeout) else {
            return close(client, from: origin, answer: answer)
        }
        if case .refused(let reason) = link.carry(
            client, to: target, from: origin, answer: answer, counting: counters)
        {
            record(reason, refusing: target, for: origin)
        }
    }

    /// Closes a client that found no link to carry it within the wait, and releases its slot.
    @inline(never)
    private func close(_ client: Socket, from origin: StreamOrigin?, answer: Link.ClientAnswer) {
        logger.warning(
            "closing client \(origin.clientText): no link to \(links.summary) within \(Int(settings.linkWaitTimeout)) s"
        )
        if case .socks(let server) = answer { server.reply(.generalFailure) } else { client.setAbortOnClose() }
        limiter.release()
        client.close()
    }

    /// Counts and logs the remote agent's refusal of a client's target.
    @inline(never)
    private func record(_ reason: ResetReason, refusing target: StreamTarget, for origin: StreamOrigin?) {
        metrics.recordRefusal(reason)
        let why = reason == .notAllowed ? "not allowed by its --allow rules" : "\(reason)"
        logger.log(
            level: reason == .notAllowed ? .warning : .info,
            "client \(origin.clientText): the remote agent refused \(target): \(why)")
    }
}
