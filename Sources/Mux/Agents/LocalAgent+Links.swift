import CoreMetrics
import Crypto
import Logging
import Synchronization

extension LocalAgent {
    // MARK: The link supervisor threads, one per slot

    /// How often a supervisor looks at its link besides being woken by the loss of its connection: for a GOAWAY,
    /// a connection due to move (`--link-max-age`, `--link-max-bytes`), and reverse forwards to ask again.
    static let tendInterval = 0.25

    /// Keeps slot `index`'s link up: connects, waits for the remote agent to name itself, publishes the link,
    /// asks for reverse forwards if it is the link that does for that agent, continues its session on a new
    /// connection when its connection is lost or due to move, and links anew with backoff when the link ends,
    /// independently of every other slot.
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
                tend(link, at: index, linkUp: linkUp)
                linkUp.record(0)
                // Another link to the same remote agent asks for the reverse forwards from now on; the agent
                // releases their ports when this link ends, so the heir may be told "in use" until then.
                if let heir = links.withdraw(at: index) { requestReverseForwards(on: heir) }
                // A draining link (the remote agent is stopping) finishes its streams on its own, and a session
                // the remote agent did not know was just answered by an agent that is up: connect the next link
                // at once for new clients.
                if !link.isClosed || link.closeReason == .sessionUnknown { continue }
            } catch {
                if error.isHandshakeFailure { metrics.recordHandshakeFailure(error) }
                logger.warning(
                    "cannot establish link \(slot.number) to \(slot.remote): \(error); retrying in \(Backoff.format(pause))"
                )
            }
            if stopRequested.wait(seconds: pause) { return }
            delay = Backoff.next(after: delay)
        }
    }

    /// Runs slot `index`'s link until it stops taking streams: asks again for reverse forwards not yet bound,
    /// continues its session when its connection is lost, and moves it to a fresh connection when it is due or
    /// has gone silent.
    private func tend(_ link: Link, at index: Int, linkUp: Gauge) {
        let slot = links[index]
        var nextListenRetry = ContinuousClock.now + .seconds(Self.listenRetryInterval)
        var maxAge = rotationAge()
        var moves = Retries(maximumDelay: Backoff.maximumDelay)
        var losses = Losses()
        var silence = SilenceWatch()
        while !link.stoppedOpening.hasCompleted && !stopRequested.hasCompleted {
            guard let connection = link.connection else {
                linkUp.record(0)
                recordLinksUp()
                // A connection that breaks again after each resumption before anything crosses it (a path that
                // cuts connections after fewer bytes than are sent again) must not make the agent reconnect
                // without pause forever: such losses back off, and share one resume timeout.
                guard
                    let since = losses.lost(
                        acknowledged: link.acknowledgedCount, resumeTimeout: settings.resumeTimeout, wait: stopRequested
                    )
                else {
                    link.close(.notResumed(seconds: Int(settings.resumeTimeout)))
                    return
                }
                guard continueSession(of: link, slot: slot, rotating: false, lostSince: since) else { return }
                losses.resumed(acknowledged: link.acknowledgedCount)
                links.linkReopened()
                linkUp.record(1)
                recordLinksUp()
                continue
            }
            connection.released.wait(seconds: Self.tendInterval)
            if ContinuousClock.now >= nextListenRetry {
                nextListenRetry = .now + .seconds(Self.listenRetryInterval)
                if links.asksForReverseForwards(at: index) { requestReverseForwards(on: link) }
            }
            guard link.isRunning(on: connection) else { continue }
            let isStalled = silence.check(connection, of: link, logger: logger)
            guard (isStalled || isDue(connection, maxAge: maxAge)) && moves.isDue else { continue }
            guard continueSession(of: link, slot: slot, rotating: true, quickly: isStalled) else { return }
            if link.connection !== connection {
                links.linkReopened()
                maxAge = rotationAge()
                moves.succeeded()
            } else {
                moves.failed(maximumDelay: isStalled ? 1 : Backoff.maximumDelay)
            }
        }
    }

    /// This link's `--link-max-age`, drawn between 90 and 100 % of it so that connections do not all last one
    /// length an observer could learn; 0 for never.
    private func rotationAge() -> Double { settings.linkMaxAge * Double.random(in: 0.9...1) }

    /// Whether `connection` has lived `maxAge` seconds or carried `--link-max-bytes`.
    private func isDue(_ connection: LinkConnection, maxAge: Double) -> Bool {
        (maxAge > 0 && ContinuousClock.now - connection.openedAt >= .seconds(maxAge))
            || (settings.linkMaxBytes > 0 && connection.bytes.load(ordering: .relaxed) >= settings.linkMaxBytes)
    }

    /// Continues `link`'s session on a new connection to `slot`'s remote agent: one that replaces a lost
    /// connection, retried with backoff until the resume timeout counted from `lostSince` (by default, when the
    /// connection was lost); or, `rotating`, one set up while the current connection still runs, which it replaces
    /// only once the new one is authenticated. `quickly` (for a stalled connection) gives the connect a few round
    /// trips, not the connect timeout, so that the next attempt follows soon while the path is dead. Returns whether the link
    /// goes on (`false`: it closed, or the agent is stopping).
    private func continueSession(
        of link: Link, slot: LinkSet.Slot, rotating: Bool, quickly: Bool = false,
        lostSince: ContinuousClock.Instant? = nil
    ) -> Bool {
        var delay = Backoff.initialDelay
        var attempt = settings
        if quickly {
            // Only the connect is hurried, to tell a dead path soon; a path that answers gets the whole handshake
            // timeout, so that a loaded peer's slow handshake is not given up again and again.
            let roundTrips = max(1, 3 * (link.roundTrip?.inSeconds ?? 0))
            attempt.connectTimeout = min(settings.connectTimeout, roundTrips)
        }
        while !stopRequested.hasCompleted && !link.isClosed {
            var pause = Backoff.jittered(delay)
            do throws(LinkError) {
                let (connection, _) = try Link.openConnection(
                    to: slot.remote, key: key, transport: transport, settings: attempt)
                try resume(link, on: connection, reason: rotating ? .rotated : .resumedElsewhere, settings: attempt)
                metrics.recordResumption()
                return true
            } catch .sessionUnknown {
                link.close(.sessionUnknown)
                return false
            } catch {
                if error.isHandshakeFailure { metrics.recordHandshakeFailure(error) }
                // A planned move that failed before the current connection was left keeps running on it.
                if rotating && !link.isDetached {
                    logger.log(
                        level: quickly ? .debug : .warning,
                        "\(link.name): cannot move to a fresh connection: \(error); staying on this one")
                    return true
                }
                let deadline = (lostSince ?? link.detachedSince ?? .now) + .seconds(settings.resumeTimeout)
                guard ContinuousClock.now < deadline else {
                    link.close(.notResumed(seconds: Int(settings.resumeTimeout)))
                    return false
                }
                pause = min(pause, (deadline - .now).inSeconds)
                logger.warning("cannot resume \(link.name): \(error); retrying in \(Backoff.format(pause))")
            }
            if stopRequested.wait(seconds: pause) { return false }
            delay = min(Backoff.next(after: delay), Self.maximumResumeDelay)
        }
        return false
    }

    /// The longest wait between attempts to resume: the resume timeout is short, and the remote agent is
    /// usually back as soon as the path is.
    static let maximumResumeDelay = 2.0

    /// Asks the remote agent to continue `link`'s session on `connection`, which is authenticated and has sent
    /// nothing: leaves the link's current connection (for `reason`), sends SESSION with the session's proof bound
    /// to `connection`, and on RESUMED runs the link there. Throws `.sessionUnknown` if the remote agent holds
    /// no such session, or why `connection` failed (it is then closed and the link waits detached).
    private func resume(_ link: Link, on connection: LinkConnection, reason: LinkError, settings: TunnelSettings)
        throws(LinkError)
    {
        guard let resumption = link.resumption, link.suspend(for: reason) != nil else {
            connection.channel.close()
            throw .localShutdown
        }
        do throws(LinkError) {
            let received = link.receivedFrames.load(ordering: .relaxed)
            let proof = resumption.proof(binding: connection.binding)
            try connection.sendOpening([.session(.resume(session: resumption.id, proof: proof, received: received))])
            let answer = try connection.receiveFirst(before: .now + .seconds(settings.handshakeTimeout))
            guard case .resumed(let result, let peerReceived) = answer else {
                throw .protocolViolation("the remote agent answered SESSION with \(answer.kind), not RESUMED")
            }
            guard result == .resumed else { throw .sessionUnknown }
            try link.resume(on: connection, peerReceived: peerReceived)
        } catch {
            if !link.isRunning(on: connection) { connection.channel.close() }
            throw error
        }
    }
}

extension LocalAgent {
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
