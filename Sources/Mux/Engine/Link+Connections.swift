import Crypto
import Logging
import Synchronization

/// Where a connection's writer starts: the peer's frames acknowledged so far (what SESSION or RESUMED said, or 0
/// for a new session), and the number of the last of this side's frames the peer has (those after it are sent
/// again first).
struct ConnectionStart {
    let acknowledged: UInt64
    let sealedThrough: UInt64
}

/// Why and since when a link has had no connection, while its session waits to continue on a new one.
final class Detachment: Sendable {
    let since = ContinuousClock.now
    /// What ended the link's use of its last connection.
    let reason: LinkError
    /// Completed when the session resumed on a new connection or the link closed.
    let over = Completion()

    init(reason: LinkError) {
        self.reason = reason
    }
}

/// A link's connections (docs/PROTOCOL.md §10): the session runs on one at a time. When one breaks, a link with a
/// `resumption` detaches from it instead of ending, and its streams wait, until the agents continue the session on
/// a new connection (`suspend`, then `resume`) or the resume timeout passes.
extension Link {
    /// Starts the writer and reader threads on `connection`, which the link runs on from now on and owns; the
    /// writer first sends `resending` again, in order. Throws the link's reason if it has closed (the connection
    /// is then still the caller's), or `.resources` if a thread cannot start (the link then ends and closes it).
    func run(on connection: LinkConnection, resending: [OutboundFrame] = []) throws(LinkError) {
        // A peer that takes none of our bytes for the dead-link timeout is as dead as one that sends none.
        connection.channel.setTimeouts(receive: settings.deadLinkTimeout, send: settings.deadLinkTimeout)
        let (closeReason, detachment): (LinkError?, Detachment?) = state.withLock { state in
            guard state.closeReason == nil else { return (state.closeReason, nil) }
            state.connection = connection
            state.previous = connection
            defer { state.detachment = nil }
            state.runningThreads += 2
            return (nil, state.detachment)
        }
        if let closeReason { throw closeReason }
        connection.threadsWillStart(2)
        // Read here, not when the writer's thread gets to run: by then the reader may have counted more frames,
        // which this connection's first ACK must not skip over as if already acknowledged.
        let start = ConnectionStart(
            acknowledged: receivedFrames.load(ordering: .relaxed), sealedThrough: sent.withLock { $0.acknowledged })
        do {
            try startThread(named: "link-writer") { self.runWriter(on: connection, from: start, resending: resending) }
        } catch {
            close(.resources(error))
            detachment?.over.complete()
            for _ in 0..<2 {  // stands in for both threads, neither of which runs
                connection.threadDidFinish()
                threadDidFinish()
            }
            throw .resources(error)
        }
        do {
            try startThread(named: "link-reader") { self.runReader(on: connection) }
        } catch {
            close(.resources(error))
            detachment?.over.complete()
            connection.threadDidFinish()  // stands in for the reader that never ran
            threadDidFinish()
            throw .resources(error)
        }
    }

    /// Whether the link runs on `connection` now.
    func isRunning(on connection: LinkConnection) -> Bool {
        state.withLock { $0.connection === connection }
    }

    /// Whether the link has no connection now, its session waiting to resume.
    var isDetached: Bool { state.withLock { $0.closeReason == nil && $0.connection == nil } }

    /// What the link holds for its peer: DATA kept to send again and payload queued, in bytes.
    var heldBytes: Int { sent.withLock { $0.payloadBytes } + queue.queuedBytes }

    /// How many of the sequenced frames sent in the session the peer has acknowledged.
    var acknowledgedCount: UInt64 { sent.withLock { $0.acknowledged } }

    /// Whether some frame sent has not been acknowledged yet: the peer owes an answer, so its silence means
    /// something.
    var awaitsAcknowledgement: Bool { sent.withLock { $0.sentCount > $0.acknowledged } }

    /// Since when the link's session has waited to resume, while it does.
    var detachedSince: ContinuousClock.Instant? { state.withLock { $0.detachment?.since } }

    /// The connection the link runs on now, if any.
    var connection: LinkConnection? { state.withLock { $0.connection } }

    /// Called by a thread of `connection` when its use of it failed for `reason`. A link with a resumption, not
    /// draining, that loses its connection to the network (not to a protocol violation) detaches: its streams
    /// wait, and the detachment is returned, for the caller to `awaitResumption` once its thread has finished.
    /// Otherwise the link closes for `reason` (nothing happens if it no longer runs on `connection`).
    func connectionFailed(_ connection: LinkConnection, _ reason: LinkError) -> Detachment? {
        enum Outcome {
            case stale, close
            case detach(Detachment)
        }
        let outcome = state.withLock { state -> Outcome in
            guard state.closeReason == nil, state.connection === connection else { return .stale }
            guard resumption != nil, settings.resumeTimeout > 0, reason.isResumable, !state.isDraining,
                !state.peerIsDraining
            else { return .close }
            let detachment = Detachment(reason: reason)
            state.connection = nil
            state.detachment = detachment
            return .detach(detachment)
        }
        switch outcome {
        case .stale: return nil
        case .close:
            close(reason)
            return nil
        case .detach(let detachment):
            release(connection)
            logger.warning(
                "\(name): connection lost (\(reason)); its \(streams.count) streams wait up to \(Int(settings.resumeTimeout)) s for it to resume"
            )
            delegate?.linkDidDetach(self)
            return detachment
        }
    }

    /// Waits while the session `detachment` began waits to resume; past the resume timeout, ends the link.
    func awaitResumption(_ detachment: Detachment) {
        let deadline = detachment.since + .seconds(settings.resumeTimeout)
        guard !detachment.over.wait(until: deadline) else { return }
        close(.notResumed(seconds: Int(settings.resumeTimeout)))
    }

    /// Stops running on the link's connection, if it has one, for `reason`, and waits until the threads of its
    /// last connection have ended, so that what this side has received is final until the session resumes: the
    /// first step of a resumption on either agent. Returns the detachment (the one under way, or a new one), or
    /// `nil` once the link has closed. A caller that then cannot `resume` hands it to `awaitResumption`.
    func suspend(for reason: LinkError) -> Detachment? {
        let (current, previous, detachment): (LinkConnection?, LinkConnection?, Detachment?) = state.withLock {
            state in
            guard state.closeReason == nil else { return (nil, nil, nil) }
            if let connection = state.connection {
                state.connection = nil
                state.detachment = Detachment(reason: reason)
                return (connection, connection, state.detachment)
            }
            return (nil, state.previous, state.detachment)
        }
        if let current { release(current) }
        previous?.ended.wait()
        return detachment
    }

    /// Continues the session on `connection`, after `suspend`: the peer has processed the first `peerReceived` of
    /// this side's sequenced frames, so the writer sends the others again before anything new. Throws if the link
    /// has closed, or `.protocolViolation` if the peer claims frames never sent (the link then ends).
    func resume(on connection: LinkConnection, peerReceived: UInt64) throws(LinkError) {
        try acknowledge(peerReceived)
        // Not `Array` of an empty deque: that writes the count into the runtime's shared empty-array storage, a
        // write ThreadSanitizer reports as a race between two links resuming at once.
        let resending = sent.withLock { $0.frames.isEmpty ? [] : Array($0.frames) }
        let detachment = state.withLock { $0.detachment }
        try run(on: connection, resending: resending)
        detachment?.over.complete()
        logger.info(
            "\(name) resumed on a new connection from \(connection.peer): \(resending.count) frames sent again, \(streams.count) streams kept"
        )
    }

    /// Forgets the sent frames the peer has processed, the first `count`. Throws `.protocolViolation`, ending
    /// the link, when `count` goes back or beyond what was sent.
    func acknowledge(_ count: UInt64) throws(LinkError) {
        guard resumption != nil else { return }
        switch sent.withLock({ $0.acknowledge(upTo: count) }) {
        case .success(let blocks): for block in blocks { self.blocks.recycle(block) }
        case .failure(let error):
            close(error)
            throw error
        }
    }

    /// Drops the frames kept for sending again: the link has ended.
    func releaseSentFrames() {
        sent.withLock { $0 = SentFrames() }
    }

    /// Stops using `connection`: wakes its threads, which end, and tells who waits on it.
    private func release(_ connection: LinkConnection) {
        connection.shutDown()
        connection.released.complete()
        queue.interruptWriter()
    }
}
