import CoreMetrics
import Logging

extension LocalAgent {
    // MARK: The link supervisor threads, one per slot

    /// Keeps slot `index`'s link up: connects, waits for the remote agent to name itself, publishes the link,
    /// asks for reverse forwards if it is the link that does for that agent, and reconnects with backoff when
    /// the link fails, independently of every other slot.
    func superviseLink(at index: Int) {
        let slot = links[index]
        let linkUp = metrics.linkUp(number: slot.number, remote: slot.remote)
        var delay = Backoff.initialDelay
        while !stopRequested.hasCompleted {
            // Drawn before the attempt, so that its failure's log line says the wait that follows.
            var pause = Backoff.jittered(delay)
            do throws(LinkError) {
                let link = try Link.connect(
                    to: slot.remote, number: slot.number, key: key, transport: transport, settings: settings,
                    limiter: limiter, agentBudget: receiveBudget, metrics: metrics, logger: logger, delegate: self)
                guard link.identified.wait(seconds: settings.handshakeTimeout), let agentID = link.peerAgentID else {
                    link.close(.protocolViolation("the remote agent did not name itself (AGENT_ID)"))
                    throw LinkError.protocolViolation("no AGENT_ID within \(Int(settings.handshakeTimeout)) s")
                }
                guard let asksForReverseForwards = links.publish(link, agentID: agentID, at: index) else {
                    link.close(.localShutdown)
                    return
                }
                logger.info(
                    "link up to \(slot.remote) (link \(slot.number), remote agent \(AgentInstance.text(agentID)))")
                linkUp.record(1)
                recordLinksUp()
                if linksEstablished.withLock({ count in
                    count += 1
                    return count > links.count
                }) {
                    metrics.linkReconnects.increment()
                }
                delay = Backoff.initialDelay
                pause = Backoff.jittered(delay)
                if asksForReverseForwards { requestReverseForwards(on: link) }
                while !link.stoppedOpening.wait(seconds: Self.listenRetryInterval) {
                    if links.asksForReverseForwards(at: index) { requestReverseForwards(on: link) }
                }
                linkUp.record(0)
                // Another link to the same remote agent asks for the reverse forwards from now on; the agent
                // releases their ports when this link ends, so the heir may be told "in use" until then.
                if let heir = links.withdraw(at: index) { requestReverseForwards(on: heir) }
                // A draining link (the remote agent is stopping) finishes its streams on its own; connect the
                // next one at once for new clients.
                if !link.isClosed { continue }
            } catch {
                if error.isHandshakeFailure { metrics.handshakeFailures.increment() }
                logger.warning(
                    "cannot establish link \(slot.number) to \(slot.remote): \(error); retrying in \(Backoff.format(pause))"
                )
            }
            if stopRequested.wait(seconds: pause) { return }
            delay = Backoff.next(after: delay)
        }
    }

    /// Asks the remote agent to listen for each reverse forward it has not bound on this link yet (none
    /// asked, or the address was in use or the bind failed; a refusal by its rules is not asked again).
    func requestReverseForwards(on link: Link) {
        guard let results = links.listenResults(on: link) else { return }
        for (id, forward) in forwards.withLock({ $0.reverse }).sorted(by: { $0.key < $1.key }) {
            switch results[id] {
            case .bound, .notAllowed: continue
            case nil, .addressInUse, .failed:
                link.send(.listen(forward: id, kind: forward.kind, address: forward.listen))
            }
        }
    }
}
