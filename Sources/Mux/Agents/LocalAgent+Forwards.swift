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
    /// that asks for them from each remote agent. New ports are bound before old ones close: when a new forward
    /// cannot listen, the forwards of its kind (`-L`, `-D`, ...) it was to replace keep running, so that a reload
    /// does not leave the agent without, say, its SOCKS port. (A new forward on an old one's port can bind only
    /// after that one closed; if it then cannot, the old one is bound again, and only if that fails too is it
    /// lost, which the outcome says.) Returns what changed and what could not be done.
    public func reconfigure(forwards wanted: [Forward], socksCredentials: SocksCredentials?) -> Reconfiguration {
        var outcome = Reconfiguration()
        let wantedListening = wanted.filter { ReverseForward($0) == nil }
        let wantedReverse = wanted.compactMap(ReverseForward.init)
        let (unwanted, cancelled, asked, added, oldCredentials) = forwards.withLock { state in
            let unwanted = state.listeners.filter { !wantedListening.contains($0.forward) }
            let kept = state.listeners.map(\.forward)
            let cancelled = state.reverse.filter { !wantedReverse.contains($0.value) }
            for id in cancelled.keys {
                state.reverse[id] = nil
                state.reverseCounters[id] = nil
            }
            let asked = wantedReverse.filter { !state.reverse.values.contains($0) }
            for reverse in asked {
                state.reverse[state.nextReverseID] = reverse
                if reverse.kind == .tcp {
                    state.reverseCounters[state.nextReverseID] = metrics.forwardBytes(reverse.forward.metricLabel)
                }
                state.nextReverseID += 1
            }
            defer { state.socksCredentials = socksCredentials }
            return (unwanted, cancelled, asked, wantedListening.filter { !kept.contains($0) }, state.socksCredentials)
        }
        if let change = SocksCredentials.change(from: oldCredentials, to: socksCredentials) {
            outcome.changes.append(change)
        }
        var bound: [(forward: Forward, socket: ForwardSocket)] = []
        var failedKinds: Set<String> = []
        var stopped: [Forward] = []
        var restored: [Forward] = []
        var lost: [Forward] = []
        for forward in added {
            let port = forward.localSocket!
            let displaced = unwanted.filter { old in
                !stopped.contains(old.forward)
                    && old.forward.localSocket.map { $0.address.port == port.address.port && $0.isUDP == port.isUDP }
                        ?? false
            }
            for old in displaced { stop(old, &stopped) }
            do {
                if let socket = try Self.bind(
                    forward, links: links, limiter: flowLimiter, settings: settings, metrics: metrics, logger: logger)
                {
                    bound.append((forward, socket))
                }
            } catch {
                failedKinds.insert(forward.kindName)
                outcome.failures.append("could not start \(forward): \(AgentError(error))")
                for old in displaced {
                    stopped.removeAll { $0 == old.forward }
                    do {
                        if let socket = try Self.bind(
                            old.forward, links: links, limiter: flowLimiter, settings: settings, metrics: metrics,
                            logger: logger)
                        {
                            bound.append((old.forward, socket))
                            restored.append(old.forward)
                        }
                    } catch {
                        lost.append(old.forward)
                        outcome.failures.append(
                            "lost \(old.forward): its port could not be bound again either: \(AgentError(error))")
                    }
                }
            }
        }
        for old in unwanted where ![stopped, restored, lost].joined().contains(old.forward) {
            if failedKinds.contains(old.forward.kindName) {
                outcome.failures.append("kept \(old.forward), which a forward that could not start was to replace")
            } else {
                stop(old, &stopped)
            }
        }
        outcome.changes += stopped.map { "stopped \($0)" }
        for (forward, socket) in bound {
            do {
                try startListening(forward, on: socket, hasCredentials: socksCredentials != nil)
            } catch {
                socket.stop()
                outcome.failures.append("could not start \(forward): \(AgentError.resources(error))")
                continue
            }
            forwards.withLock { $0.listeners.append((forward, socket)) }
            if restored.contains(forward) {
                outcome.failures.append("kept \(forward) on its port, which a forward that could not start was to take")
            } else {
                outcome.changes.append("started \(forward)")
            }
        }
        links.forgetResults(for: cancelled.keys)
        let askers = links.reverseForwardLinks
        for (id, reverse) in cancelled {
            for link in askers { link.send(.unlisten(forward: id)) }
            outcome.changes.append("cancelled \(reverse.forward)")
        }
        for reverse in asked {
            outcome.changes.append("asked for \(reverse.forward)")
        }
        for link in askers { requestReverseForwards(on: link) }
        return outcome
    }

    /// Stops `listener`'s forward taking clients, and notes it in `stopped`.
    private func stop(_ listener: (forward: Forward, socket: ForwardSocket), _ stopped: inout [Forward]) {
        forwards.withLock { $0.listeners.removeAll { $0.forward == listener.forward } }
        listener.socket.stop()
        stopped.append(listener.forward)
    }

    /// UDP flows running now, over every `-L …/udp` forward.
    public var flowCount: Int { flowLimiter.count }
}

/// What a reload did to a running agent: what changed, and what it could not do (a new port that could not be
/// bound, an old one kept for that reason), which the agent logs as errors.
public struct Reconfiguration: Sendable {
    public var changes: [String] = []
    public var failures: [String] = []

    public init(changes: [String] = [], failures: [String] = []) {
        self.changes = changes
        self.failures = failures
    }
}
