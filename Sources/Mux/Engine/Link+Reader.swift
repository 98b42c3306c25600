import CoreMetrics
import Glibc
import Logging
import Synchronization

/// The link's reader thread: it decodes the peer's frames, enforces the protocol's rules, and hands each
/// frame to its stream or to the delegate, never blocking on either.
extension Link {
    func runReader(on connection: LinkConnection) {
        var received = receivedFrames.load(ordering: .relaxed)
        var acknowledgementAsked = received
        let reason: LinkError
        do throws(LinkError) {
            while true {
                let count: Int
                do {
                    count = try connection.decoder.receive { (buffer) throws(SocketError) in
                        try connection.channel.receive(into: buffer)
                    }
                } catch {
                    throw error.isTimeout ? .peerSilent(seconds: Int(settings.deadLinkTimeout)) : .socket(error)
                }
                guard count > 0 else { throw .closedByPeer }
                connection.bytes.add(count, ordering: .relaxed)
                metrics.bytesReceived.increment(by: count)
                connection.lastReceived.store(MonotonicClock.nanoseconds(), ordering: .relaxed)
                while let frame = try nextFrame(&connection.decoder) {
                    let isSequenced: Bool
                    switch frame {
                    // Written to the stream's connection from where it was opened, before the next receive.
                    case .data(let id, let payload):
                        try stream(id)?.receiveData(payload)
                        isSequenced = true
                    case .datagram(let id, let payload):
                        try flow(id)?.receiveDatagram(payload)
                        isSequenced = false
                    case .other(let frame):
                        try dispatch(frame)
                        isSequenced = frame.kind.isSequenced
                    }
                    guard isSequenced, resumption != nil else { continue }
                    received += 1
                    receivedFrames.store(received, ordering: .relaxed)
                    // With nothing of its own to send, the writer would not acknowledge: ask it to.
                    if received - acknowledgementAsked >= Limits.acknowledgeEveryFrames {
                        acknowledgementAsked = received
                        queue.pushControl(.ack(received))
                    }
                }
            }
        } catch {
            reason = error
        }
        // End of stream after a GOAWAY either way is the planned end of a drain, not a failure; anything else
        // (a protocol violation mid-drain) is reported as what it was.
        let (isDraining, peerIsDraining) = state.withLock { ($0.isDraining, $0.peerIsDraining) }
        let isPlannedEnd = reason == .closedByPeer || reason == .socket(SocketError(call: "recv", code: ECONNRESET))
        let detachment = connectionFailed(
            connection,
            isPlannedEnd && isDraining ? .localShutdown : isPlannedEnd && peerIsDraining ? .peerShutDown : reason)
        connection.threadDidFinish()
        threadDidFinish()
        if let detachment { awaitResumption(detachment) }
    }

    private func nextFrame(_ decoder: inout FrameDecoder) throws(LinkError) -> ReceivedFrame? {
        do {
            return try decoder.nextReceivedFrame()
        } catch {
            throw .protocolViolation(error.description)
        }
    }

    private func dispatch(_ frame: Frame) throws(LinkError) {
        switch frame {
        case .data, .datagram: preconditionFailure("the decoder hands DATA and DATAGRAM over in place")
        case .window(let id, let increment): try stream(id)?.receiveWindow(increment: increment)
        case .fin(let id): try stream(id)?.receiveFIN()
        case .reset(let id, let reason): try stream(id)?.receiveReset(reason)
        case .open(let id, let window, let target, let origin):
            try acceptOpen(id: id, window: window, target: target, origin: origin)
        case .openOK(let id, let window):
            guard role.opens(id) else { throw .protocolViolation("OPEN_OK for stream \(id), which the peer opened") }
            try stream(id)?.receiveOpenOK(window: window)
        case .ping(let value): try answer(.pong(value))
        case .pong(let value): recordPong(value)  // its arrival also proved the peer alive
        case .goAway: receiveGoAway()
        case .listen(let forward, let kind, let address):
            guard role == .remote else { throw .protocolViolation("LISTEN sent to the local agent") }
            delegate?.link(self, didRequestListen: address, kind: kind, forward: forward)
        case .unlisten(let forward):
            guard role == .remote else { throw .protocolViolation("UNLISTEN sent to the local agent") }
            delegate?.link(self, didCancelListen: forward)
        case .listenResult(let forward, let result, let port):
            guard role == .local else { throw .protocolViolation("LISTEN_RESULT sent to the remote agent") }
            delegate?.link(self, didAnswerListen: forward, result: result, port: port)
        case .padding: break
        case .agentID(let instance): try receiveAgentID(instance)
        case .flowOpen(let id, let target, let origin): try acceptFlow(id: id, target: target, origin: origin)
        case .flowClose(let id, let reason): try receiveFlowClose(id, reason: reason)
        case .ack(let count): try acknowledge(count)
        case .session, .resumed: throw .protocolViolation("\(frame.kind) after the connection's first frame")
        }
    }

    /// The remote agent named its instance: once per link, before anything that depends on it.
    private func receiveAgentID(_ instance: UInt64) throws(LinkError) {
        guard role == .local else { throw .protocolViolation("AGENT_ID sent to the remote agent") }
        let isFirst = state.withLock { state in
            defer { state.peerAgentID = instance }
            return state.peerAgentID == nil
        }
        guard isFirst else { throw .protocolViolation("a second AGENT_ID") }
        identified.complete()
    }

    /// Queues an answer the peer's frame forced; ends the link when the peer has not read the last
    /// `Limits.maxQueuedAnswers` of them (PROTOCOL.md §8).
    func answer(_ frame: Frame) throws(LinkError) {
        guard queue.pushAnswer(frame) else {
            throw .protocolViolation(
                "the peer sent \(Limits.maxQueuedAnswers) frames that need an answer without reading one")
        }
    }

    /// The peer is shutting down: open no new streams here; those in flight go on until the peer closes.
    private func receiveGoAway() {
        let isFirst = state.withLock { state in
            defer { state.peerIsDraining = true }
            return !state.peerIsDraining
        }
        guard isFirst else { return }
        logger.info("peer is shutting down; \(streams.count) streams finishing on this link")
        stoppedOpening.complete()
    }

    /// The stream `id`, or `nil` for one that already ended (late frames are dropped).
    /// Throws for an id that was never opened.
    private func stream(_ id: StreamID) throws(LinkError) -> Stream? {
        if let stream = streams[id] { return stream }
        try checkWasOpened(id, in: .streams)
        return nil
    }

    private func acceptOpen(id: StreamID, window: UInt32, target: StreamTarget, origin: StreamOrigin?)
        throws(LinkError)
    {
        let isAccepting = try recordPeerOpened(id, in: .streams)
        // An OPEN that crossed our GOAWAY, or one beyond the agent's stream limit, is answered with RESET.
        guard isAccepting else { return try answer(.reset(id, .aborted)) }
        guard slots.tryAcquire() else {
            refusals.log(logger, level: .warning, "refused stream \(id): \(slots.refusal)")
            return try answer(.reset(id, .tooManyStreams))
        }
        let stream = Stream(id: id, link: self, target: target, window: makeReceiveWindow(), sendCredit: Int(window))
        // Checked again with the insert, under `state`'s lock, so that neither `close` nor `beginDrain` can run
        // between them: a drain that began meanwhile has counted its streams without this one.
        let registration: Bool? = state.withLock { state in
            guard state.closeReason == nil else { return nil }
            guard !state.isDraining else { return false }
            streams.insert(stream, at: stream.id)
            return true
        }
        switch registration {
        case nil: return stream.abandon()  // the link is closing; nothing to answer
        case false: return stream.refuse(.aborted)  // it crossed our GOAWAY
        case true: break
        }
        logger.debug("stream \(id) opened to \(target) by the peer", metadata: stream.logMetadata)
        guard let delegate else { return stream.refuse(.aborted) }
        delegate.link(self, didOpen: stream, to: target, from: origin)
    }
}
