import CoreMetrics
import Crypto
import Logging
import Synchronization

/// The remote agent's sessions (docs/PROTOCOL.md §10): each authenticated connection's first frame begins a new
/// session or continues one that the local agent holds too, so that a broken connection costs its streams a
/// pause, not their end. Sessions waiting to resume stay within `--max-detached-sessions` and
/// `--max-detached-bytes`.
extension RemoteAgent {
    /// Runs on the handshake thread, so it must not block: hands the connection from `peer`, which authenticated
    /// with `keys`, to a thread of its own that reads its first frame and begins or continues a session on it.
    func admitConnection(_ socket: Socket, channel: any LinkChannel, keys: SessionKeys, peer: Endpoint) {
        socket.prepareForLink()
        let connection = LinkConnection(channel: channel, peer: peer, keys: keys.serverSide(), binding: keys.binding)
        do {
            try startThread(named: "link-session") { self.openSession(on: connection, keys: keys) }
        } catch {
            channel.close()
            failures.log(logger, level: .error, "closing the connection from \(peer): \(error)")
        }
    }

    /// Reads the connection's first frame, SESSION, within the handshake timeout, and does what it asks.
    private func openSession(on connection: LinkConnection, keys: SessionKeys) {
        let request: SessionRequest
        do throws(LinkError) {
            let first = try connection.receiveFirst(before: .now + .seconds(settings.handshakeTimeout))
            guard case .session(let asked) = first else {
                throw .protocolViolation("the connection's first frame is \(first.kind), not SESSION")
            }
            request = asked
        } catch {
            connection.channel.close()
            return failures.log(logger, level: .warning, "closing the connection from \(connection.peer): \(error)")
        }
        switch request {
        case .begin: beginSession(on: connection, keys: keys)
        case .resume(let id, let proof, let received):
            continueSession(id, proof: proof, peerReceived: received, on: connection)
        }
    }

    /// Starts a link whose session begins on `connection`, authenticated with `keys`, and names this agent on it
    /// first.
    private func beginSession(on connection: LinkConnection, keys: SessionKeys) {
        let peer = connection.peer
        let link = Link(
            connection: connection, resumption: keys.resumption, role: .remote, settings: settings.link, slots: limiter,
            agentBudget: receiveBudget, metrics: metrics.linkMetrics(peer: peer, key: keys.keyFingerprint),
            logger: logger.withMetadata("link", "\(peer)"), delegate: self)
        link.send(.agentID(instanceID))  // queued first: the local agent waits for it before using the link
        sessions.insert(link)
        links.withLock { $0[ObjectIdentifier(link)] = link }
        do {
            try link.start()
        } catch {
            return failures.log(logger, level: .error, "closing the link from \(peer): \(error)")
        }
        recordLinksUp()
        if linksEstablished.withLock({ count in
            count += 1
            return count > 1
        }) {
            metrics.linkReconnects.increment()
        }
        logger.info("link up from \(peer)")
    }

    /// Continues session `id` on `connection` when `proof` shows its key bound to this connection: leaves the
    /// session's current connection, if it still has one, answers RESUMED with what this side has received,
    /// and sends again what the local agent has not (`peerReceived`). Answers RESUMED(unknown) otherwise.
    private func continueSession(_ id: [UInt8], proof: [UInt8], peerReceived: UInt64, on connection: LinkConnection) {
        let peer = connection.peer
        let link: Link
        switch sessions.beginResuming(id) {
        case .found(let found): link = found
        case .unknown: return refuseResumption(on: connection)
        case .busy:
            // Another connection continues it this moment: the local agent tries again if it still needs to.
            logger.info("closing a connection from \(peer) that asked to resume a session already resuming")
            return connection.channel.close()
        }
        guard link.resumption?.accepts(proof, binding: connection.binding) == true,
            let detachment = link.suspend(for: .resumedElsewhere)
        else {
            sessions.endResuming(link, resumed: false)
            return refuseResumption(on: connection)
        }
        do throws(LinkError) {
            try connection.sendOpening([.resumed(.resumed, received: link.receivedFrames.load(ordering: .relaxed))])
            try link.resume(on: connection, peerReceived: peerReceived)
        } catch {
            if !link.isRunning(on: connection) { connection.channel.close() }
            sessions.endResuming(link, resumed: false)
            link.logger.warning("\(link.name): could not resume on the connection from \(peer): \(error)")
            endEvicted(sessions.didDetach(link))
            recordLinksUp()
            // When this resumption took the session from a live connection, no other thread keeps its deadline.
            return link.awaitResumption(detachment)
        }
        sessions.endResuming(link, resumed: true)
        metrics.recordResumption()
        recordLinksUp()
    }

    /// Tells the local agent on `connection` that this agent holds no such session, and closes the connection.
    private func refuseResumption(on connection: LinkConnection) {
        logger.warning(
            "refused to resume a session for \(connection.peer): this agent holds none by that id (it expired, was evicted, or began before a restart)"
        )
        try? connection.sendOpening([.resumed(.unknown, received: 0)])
        connection.channel.shutdown(.write)
        connection.channel.close()
    }

    /// Ends the sessions evicted to make room for newer waiting ones.
    private func endEvicted(_ evicted: [Link]) {
        for link in evicted {
            logger.warning(
                "\(link.name): ending its session, which waited longest to resume, to make room (--max-detached-sessions \(settings.maxDetachedSessions), --max-detached-bytes \(settings.maxDetachedBytes))"
            )
            link.close(.evicted)
        }
    }

    /// Sets the gauges of links up (sessions on a connection) and of sessions waiting to resume.
    func recordLinksUp() {
        let detached = sessions.detachedCount
        metrics.sessionsDetached.record(detached)
        metrics.linksUp.record(max(0, links.withLock { $0.count } - detached))
    }

    // MARK: LinkDelegate

    func linkDidDetach(_ link: Link) {
        endEvicted(sessions.didDetach(link))
        recordLinksUp()
    }
}
