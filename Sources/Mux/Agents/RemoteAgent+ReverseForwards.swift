import Logging

/// The remote agent's side of reverse forwards (`-R`, docs/PROTOCOL.md §6.1): binding the ports its links' local
/// agents ask for within the `--allow-listen` rules, and carrying each client back over the link that asked.
extension RemoteAgent {
    func link(_ link: Link, didRequestListen address: Endpoint, kind: TrafficKind, forward: UInt32) {
        let service: ReverseListeners.Service
        switch kind {
        case .tcp:
            service = .stream { [self] client in admitReverseClient(client, link: link, forward: forward) }
        case .udp:
            service = .datagrams { [self] (address) throws(ListenError) in
                try UDPForwarder(
                    listen: address, addressing: .fixed(.reverseForward(forward)), limiter: flowLimiter,
                    idleTimeout: settings.udpIdleTimeout, metrics: metrics.datagrams, logger: link.logger
                ) { [weak link] in link }
            }
        }
        answerListen(address, kind: kind, forward: forward, on: link, service: service)
    }

    /// Binds `address` for `link`'s reverse forward and answers its LISTEN. When a session waiting to resume held
    /// the address, that session ends and, on a thread of its own (closing a port waits for its accept thread,
    /// which a link's reader must not), the port closes and the address is bound for `link` at once.
    private func answerListen(
        _ address: Endpoint, kind: TrafficKind, forward: UInt32, on link: Link, service: ReverseListeners.Service
    ) {
        let outcome = reverseListeners.bind(address, forward: forward, for: link, logger: link.logger, service: service)
        if let holder = outcome.waitingHolder {
            link.logger.info("\(address) is held by \(holder.link.name), whose session waits to resume; ending it")
            holder.link.close(.supplanted)
            do {
                try startThread(named: "listen-takeover") { [self] in
                    holder.socket.stop()
                    logger.info("stopped listening on \(address) for \(holder.link.name)")
                    answerListen(address, kind: kind, forward: forward, on: link, service: service)
                }
                return
            } catch {
                holder.socket.requestStop()  // the local agent asks again in a few seconds
            }
        }
        let what = kind == .udp ? "\(address) (UDP)" : "\(address)"
        if outcome.result == .bound {
            link.logger.info("listening on \(what) for the link's reverse forward \(forward): \(outcome.verdict)")
        } else {
            refusedListens.withLock { $0 += 1 }
            link.logger.warning("refused to listen on \(what) for reverse forward \(forward): \(outcome.verdict)")
        }
        link.send(.listenResult(forward: forward, outcome.result, port: outcome.port))
    }

    func link(_ link: Link, didCancelListen forward: UInt32) {
        for address in reverseListeners.release(for: link, forward: forward) {
            link.logger.info("stopped listening on \(address): the local agent cancelled reverse forward \(forward)")
        }
    }

    /// Runs on a reverse-forward accept thread, so it must not block: takes a stream slot and hands the client
    /// to a thread of its own, which carries it back over `link`.
    private func admitReverseClient(_ client: Socket, link: Link, forward: UInt32) {
        limiter.admit(client, thread: "reverse-client", logger: logger, warnings: failures) { [metrics] in
            let origin = client.origin
            switch link.carry(client, to: .reverseForward(forward), from: origin, answer: .none) {
            case .refused(let reason):
                metrics.recordRefusal(reason)
                link.logger.warning(
                    "client \(origin.clientText) of reverse forward \(forward) refused by the local agent: \(reason)")
            case nil, .linkClosed:
                link.logger.info("client \(origin.clientText) of reverse forward \(forward) closed: the link is down")
            case .unanswered:
                link.logger.warning(
                    "client \(origin.clientText) of reverse forward \(forward) reset: the local agent did not answer its OPEN within \(Int(Limits.openAnswerTimeout)) s"
                )
            case .established: break
            }
        }
    }
}
