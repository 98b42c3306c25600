import Logging

/// The local agent's forwards: binding and starting them, and changing them while the agent runs.
extension LocalAgent {
    /// Binds `forward`'s socket here, so that a port in use fails now; `nil` for a forward that listens on the
    /// remote side (`-R`).
    static func bind(
        _ forward: Forward, links: LinkSet, limiter: FlowLimiter, settings: TunnelSettings, metrics: AgentMetrics,
        logger: Logger
    ) throws(ListenError) -> ForwardSocket? {
        switch forward {
        case .tunnel(let listen), .local(let listen, _), .socks(let listen):
            return .stream(try Listener(endpoint: listen))
        case .localUDP(let listen, let target):
            return .datagrams(
                try UDPForwarder(
                    listen: listen, addressing: .fixed(.endpoint(target)), limiter: limiter,
                    idleTimeout: settings.udpIdleTimeout,
                    metrics: metrics.datagrams, logger: logger
                ) { links.await(seconds: 0) })
        case .reverse, .reverseUDP: return nil
        }
    }

    /// Starts taking `forward`'s clients on `socket`, and says so.
    func startListening(_ forward: Forward, on socket: ForwardSocket, hasCredentials: Bool) throws(ThreadError) {
        switch socket {
        case .stream(let listener):
            let counters = metrics.forwardBytes(forward.metricLabel)
            try listener.start(logger: logger) { [clients] client in
                clients.admit(client, forward: forward, counting: counters)
            }
        case .datagrams(let forwarder): try forwarder.start()
        }
        let endpoint = socket.endpoint
        switch forward {
        case .tunnel: logger.info("listening on \(endpoint) for the remote agent's target")
        case .local(_, let target): logger.info("listening on \(endpoint), forwarding to \(target) (-L)")
        case .localUDP(_, let target):
            logger.info("listening on \(endpoint) for UDP, forwarding datagrams to \(target) (-L)")
        case .socks:
            let authentication = hasCredentials ? "username/password required" : "no authentication"
            logger.info("listening on \(endpoint) as a SOCKS5 server (-D), \(authentication)")
        case .reverse, .reverseUDP: break
        }
        if let exposure = forward.exposure(socksLoginRequired: hasCredentials) { logger.warning("\(exposure)") }
    }

    /// Changes what the agent forwards while it runs (a reload): forwards that are no longer wanted stop taking
    /// new clients, new ones start, and those in both lists go on untouched; so do the links and every stream in
    /// flight, whichever forward it came from. Reverse forwards are asked for or cancelled at once, on the link
    /// that asks for them from each remote agent.
    /// Returns one line per change; a new forward whose port cannot be bound is reported there and skipped.
    public func reconfigure(forwards wanted: [Forward], socksCredentials: SocksCredentials?) -> [String] {
        var changes: [String] = []
        let wantedListening = wanted.filter { ReverseForward($0) == nil }
        let wantedReverse = wanted.compactMap(ReverseForward.init)
        let (removed, cancelled, asked, added, hasCredentials) = forwards.withLock { state in
            let removed = state.listeners.filter { !wantedListening.contains($0.forward) }
            state.listeners.removeAll { !wantedListening.contains($0.forward) }
            let kept = state.listeners.map(\.forward)
            let cancelled = state.reverse.filter { !wantedReverse.contains($0.value) }
            for id in cancelled.keys { state.reverse[id] = nil }
            let asked = wantedReverse.filter { !state.reverse.values.contains($0) }
            for reverse in asked {
                state.reverse[state.nextReverseID] = reverse
                state.nextReverseID += 1
            }
            state.socksCredentials = socksCredentials
            return (removed, cancelled, asked, wantedListening.filter { !kept.contains($0) }, socksCredentials != nil)
        }
        for (forward, socket) in removed {
            socket.stop()
            changes.append("stopped \(forward)")
        }
        for forward in added {
            do throws(AgentError) {
                let bound: ForwardSocket?
                do {
                    bound = try Self.bind(
                        forward, links: links, limiter: flowLimiter, settings: settings, metrics: metrics,
                        logger: logger)
                } catch {
                    throw AgentError(error)
                }
                guard let socket = bound else { continue }
                do {
                    try startListening(forward, on: socket, hasCredentials: hasCredentials)
                } catch {
                    socket.stop()
                    throw .resources(error)
                }
                forwards.withLock { $0.listeners.append((forward, socket)) }
                changes.append("started \(forward)")
            } catch {
                changes.append("could not start \(forward): \(error)")
            }
        }
        for reverse in asked where reverse.kind == .tcp {
            _ = metrics.forwardBytes(reverse.forward.metricLabel)  // at 0 until its first client
        }
        links.forgetResults(for: cancelled.keys)
        let askers = links.reverseForwardLinks
        for (id, reverse) in cancelled {
            for link in askers { link.send(.unlisten(forward: id)) }
            changes.append("cancelled \(reverse.forward)")
        }
        for reverse in asked {
            changes.append("asked for \(reverse.forward)")
        }
        for link in askers { requestReverseForwards(on: link) }
        return changes
    }

    /// UDP flows running now, over every `-L …/udp` forward.
    public var flowCount: Int { flowLimiter.count }
}
