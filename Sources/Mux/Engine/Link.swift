import CoreMetrics
import Crypto
import Foundation
import Logging

/// One encrypted link between a local and a remote agent, carrying many streams.
///
/// Threads: the reader thread is the only one that reads `socket`; it decodes frames and hands them to streams
/// without ever blocking on one. The writer thread is the only one that writes `socket`, draining `queue`.
/// Either thread may end the link; `socket` is closed once, after both have finished.
///
/// `@unchecked Sendable`: stored properties are immutable or Sendable (the weak `delegate` is set once, in `init`);
/// mutable state is in `state` (a `Locked`).
final class Link: @unchecked Sendable {
    /// Which end of the tunnel this link serves. Both ends open streams: the local agent with odd ids, the
    /// remote agent (for reverse forwards) with even ones, so that the two never pick the same id.
    enum Role: Sendable {
        case local, remote

        /// The first id this side gives a stream; its next ones follow two apart.
        var firstStreamID: StreamID { self == .local ? 1 : 2 }

        /// Whether `id` belongs to the ids this side gives.
        func opens(_ id: StreamID) -> Bool { id % 2 == firstStreamID % 2 }
    }

    private struct State {
        var closeReason: LinkError?
        /// We sent GOAWAY: no new streams; the link ends once the streams in flight have.
        var isDraining = false
        /// The peer sent GOAWAY: open no new streams here.
        var peerIsDraining = false
        /// The id the next stream we open gets. Ids increase and are never reused within a link.
        var nextStreamID: StreamID
        /// The highest id the peer has opened.
        var highestPeerStreamID: StreamID = 0
        /// Reader and writer threads still running.
        var runningThreads = 2
    }

    let role: Role
    /// The other agent's address.
    let peer: Endpoint
    let settings: TunnelSettings
    let logger: Logger
    /// Frames waiting for the writer thread.
    let queue: OutboundQueue
    /// Bytes received but not yet consumed, across all streams.
    let budget: ReceiveBudget
    /// Completed when both link threads have ended and the socket is closed.
    let finished = Completion()
    /// Completed when the link stops taking new streams: it closed, or either side sent GOAWAY.
    let stoppedOpening = Completion()
    /// Completed when the link is draining and its last stream has ended.
    private let drained = Completion()
    /// The agent's cap on streams; every stream on this link holds one of its slots until it ends.
    let limiter: StreamLimiter
    /// The agent's counters, which this link's streams add to.
    let metrics: AgentMetrics
    /// This link's round trip, as the metrics report it.
    private let roundTripGauge: Gauge
    private let socket: Socket
    private let streams = StreamTable()
    private let state: Locked<State>
    /// The agent that owns this link. Weak, because the agent holds its links: once the agent is gone, streams
    /// the peer opens are refused and control messages are dropped.
    private weak var delegate: (any LinkDelegate)?
    /// Throttles the warning for streams refused at the limit.
    private let refusals = LogThrottle()

    private let keys: (sealer: FrameSealer, opener: FrameOpener)
    /// The zero of PING values: each PING carries nanoseconds since then, so its PONG gives the round trip.
    private let epoch = ContinuousClock.now
    /// The last round-trip time measured by PING, read when windows auto-tune.
    private let measuredRoundTrip = Locked<Duration?>(nil)

    /// A link over an already authenticated `socket`, which it now owns; `start()` runs it and reports to
    /// `delegate` from then on.
    init(
        socket: Socket, keys: (sealer: FrameSealer, opener: FrameOpener), role: Role, settings: TunnelSettings,
        limiter: StreamLimiter, metrics: AgentMetrics, logger: Logger, delegate: any LinkDelegate
    ) {
        self.socket = socket
        peer = socket.peerEndpoint
        self.metrics = metrics
        roundTripGauge = metrics.makeRoundTripGauge(peer: peer)
        self.keys = keys
        self.role = role
        self.settings = settings
        self.limiter = limiter
        self.logger = logger
        self.delegate = delegate
        state = Locked(State(nextStreamID: role.firstStreamID))
        queue = OutboundQueue(dataLimit: settings.outboundQueueBytes)
        budget = ReceiveBudget(bytes: settings.linkReceiveBudget)
    }

    /// Starts the reader and writer threads. On failure the link ends: its socket is closed, at once or when
    /// the writer thread has stopped.
    func start() throws(LinkError) {
        socket.setNoDelay()
        socket.setReceiveTimeout(seconds: settings.deadLinkTimeout)
        // A peer that takes none of our bytes for the dead-link timeout is as dead as one that sends none.
        socket.setSendTimeout(seconds: settings.deadLinkTimeout)
        let (sealer, opener) = keys
        do {
            try startThread(named: "link-writer") { self.runWriter(FrameEncoder(sealer: sealer)) }
        } catch {
            socket.close()
            throw .resources(error)
        }
        do {
            try startThread(named: "link-reader") { self.runReader(FrameDecoder(opener: opener)) }
        } catch {
            close(.resources(error))
            threadDidFinish()  // stands in for the reader that never ran
            throw .resources(error)
        }
        queue.pushControl(makePing())  // measures the round trip before any window needs it
    }

    /// The link's round-trip time as last measured, once the first PONG has arrived.
    var roundTrip: Duration? { measuredRoundTrip.withLock { $0 } }

    private func makePing() -> Frame {
        .ping(UInt64((ContinuousClock.now - epoch).nanoseconds))
    }

    /// Takes the round trip from a PONG's echoed send time; values a peer could not have echoed are ignored.
    private func recordPong(_ value: UInt64) {
        let elapsed = (ContinuousClock.now - epoch).nanoseconds
        guard value <= elapsed else { return }
        measuredRoundTrip.withLock { $0 = .nanoseconds(elapsed - Int64(value)) }
        roundTripGauge.record(Double(elapsed - Int64(value)) / 1e9)
    }

    /// The number of streams open on this link.
    var streamCount: Int { streams.count }

    /// Whether the link has ended or is ending.
    var isClosed: Bool { state.withLock { $0.closeReason != nil } }

    /// Whether new streams may be opened on this link.
    var isOpenForStreams: Bool {
        state.withLock { $0.closeReason == nil && !$0.isDraining && !$0.peerIsDraining }
    }

    // MARK: Called by agents and stream threads

    /// Registers a stream for a newly accepted client and sends OPEN naming `target`. The caller holds a slot
    /// of `limiter`, which the stream returns when it ends, and attaches the client once the peer accepted
    /// (`Stream.awaitEstablished`, `Stream.attach`). Returns `nil` if the link takes no new streams; the slot is
    /// then still the caller's.
    func openStream(to target: StreamTarget) -> Stream? {
        let window = makeReceiveWindow()
        let stream: Stream? = state.withLock { state in
            guard state.closeReason == nil, !state.isDraining, !state.peerIsDraining,
                state.nextStreamID <= .max - 2
            else { return nil }
            let stream = Stream(id: state.nextStreamID, link: self, window: window, sendCredit: 0)
            state.nextStreamID += 2
            // Both under `state`'s lock: `close` cannot miss the stream, and OPENs reach the queue in id order.
            streams.insert(stream)
            queue.pushControl(.open(stream.id, window: UInt32(window.size), target: target))
            return stream
        }
        guard let stream else {
            budget.release(window.size)
            return nil
        }
        logger.debug("stream \(stream.id) opened to \(target)")
        return stream
    }

    /// Queues a link-level control frame (LISTEN, LISTEN_RESULT) for the peer.
    func send(_ frame: Frame) {
        precondition(frame.streamID == 0, "stream frames are sent by their stream")
        queue.pushControl(frame)
    }

    /// Ends the link now: aborts every stream that still needs it and wakes both threads. Idempotent; the first reason wins.
    func close(_ reason: LinkError) {
        let isFirst = state.withLock { state in
            guard state.closeReason == nil else { return false }
            state.closeReason = reason
            return true
        }
        guard isFirst else { return }
        stoppedOpening.complete()
        queue.close()
        socket.shutdown(.both)
        for stream in streams.snapshot().values { stream.linkDidClose() }
    }

    // MARK: Draining, for a clean shutdown

    /// Sends GOAWAY: the peer opens no new streams here, and those in flight go on. Returns at once.
    func beginDrain() {
        let isFirst = state.withLock { state in
            defer { state.isDraining = true }
            return !state.isDraining
        }
        guard isFirst else { return }
        stoppedOpening.complete()
        queue.pushControl(.goAway(.shutdown))
        if streams.count == 0 { drained.complete() }
    }

    /// Waits until every stream has ended or `deadline` passes; returns whether they all ended.
    /// Call `beginDrain()` first.
    func waitUntilDrained(deadline: ContinuousClock.Instant) -> Bool {
        drained.wait(until: deadline)
    }

    /// Resets the streams still running, flushes what is queued, half-closes the TCP connection and waits up to
    /// `seconds` for the peer to close its side; then closes the link regardless.
    func finishDrain(waitingUpTo seconds: Double) {
        beginDrain()
        for stream in streams.snapshot().values { stream.abort(sending: .aborted) }
        queue.finish()
        if !finished.wait(seconds: seconds) { close(.localShutdown) }
        finished.wait(seconds: seconds)
    }

    /// Called by a stream when its last thread ended.
    func streamDidEnd(id: StreamID, summary: String) {
        streams.remove(id)
        limiter.release()
        logger.debug("stream \(id) closed: \(summary)")
        if state.withLock({ $0.isDraining }) && streams.count == 0 { drained.complete() }
    }

    private func makeReceiveWindow() -> ReceiveWindow {
        let size = budget.reserve(upTo: settings.streamWindow, atLeast: Limits.minimumStreamWindow)
        return ReceiveWindow(size: size, targetSize: settings.streamWindow, maxSize: settings.maxStreamWindow)
    }

    // MARK: The reader thread

    private func runReader(_ decoder: FrameDecoder) {
        var decoder = decoder
        let reason: LinkError
        do throws(LinkError) {
            while true {
                let count: Int
                do {
                    count = try decoder.receive { (buffer) throws(SocketError) in try socket.receive(into: buffer) }
                } catch {
                    throw error.isTimeout ? .peerSilent(seconds: Int(settings.deadLinkTimeout)) : .socket(error)
                }
                guard count > 0 else { throw .closedByPeer }
                while let frame = try nextFrame(&decoder) { try dispatch(frame) }
            }
        } catch {
            reason = error
        }
        // End of stream after a GOAWAY either way is the planned end of a drain, not a failure; anything else
        // (a protocol violation mid-drain) is reported as what it was.
        let (isDraining, peerIsDraining) = state.withLock { ($0.isDraining, $0.peerIsDraining) }
        let isPlannedEnd = reason == .closedByPeer || reason == .socket(SocketError(call: "recv", code: ECONNRESET))
        close(isPlannedEnd && isDraining ? .localShutdown : isPlannedEnd && peerIsDraining ? .peerShutDown : reason)
        threadDidFinish()
    }

    private func nextFrame(_ decoder: inout FrameDecoder) throws(LinkError) -> Frame? {
        do {
            return try decoder.nextFrame()
        } catch {
            throw .protocolViolation(error.description)
        }
    }

    private func dispatch(_ frame: Frame) throws(LinkError) {
        switch frame {
        case .data(let id, let bytes): try stream(id)?.receiveData(bytes)
        case .window(let id, let increment): try stream(id)?.receiveWindow(increment: increment)
        case .fin(let id): try stream(id)?.receiveFIN()
        case .reset(let id, let reason): try stream(id)?.receiveReset(reason)
        case .open(let id, let window, let target): try acceptOpen(id: id, window: window, target: target)
        case .openOK(let id, let window):
            guard role.opens(id) else { throw .protocolViolation("OPEN_OK for stream \(id), which the peer opened") }
            try stream(id)?.receiveOpenOK(window: window)
        case .ping(let value): try answer(.pong(value))
        case .pong(let value): recordPong(value)  // its arrival also proved the peer alive
        case .goAway: receiveGoAway()
        case .listen(let forward, let address):
            guard role == .remote else { throw .protocolViolation("LISTEN sent to the local agent") }
            delegate?.link(self, didRequestListen: address, forward: forward)
        case .unlisten(let forward):
            guard role == .remote else { throw .protocolViolation("UNLISTEN sent to the local agent") }
            delegate?.link(self, didCancelListen: forward)
        case .listenResult(let forward, let result, let port):
            guard role == .local else { throw .protocolViolation("LISTEN_RESULT sent to the remote agent") }
            delegate?.link(self, didAnswerListen: forward, result: result, port: port)
        case .padding: break
        }
    }

    /// Queues an answer the peer's frame forced; ends the link when the peer has not read the last
    /// `Limits.maxQueuedAnswers` of them (PROTOCOL.md §8).
    private func answer(_ frame: Frame) throws(LinkError) {
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
        if let stream = streams.snapshot()[id] { return stream }
        let highest = state.withLock { role.opens(id) ? $0.nextStreamID - 1 : $0.highestPeerStreamID }
        guard id <= highest else { throw .protocolViolation("frame for stream \(id), which was never opened") }
        return nil
    }

    private func acceptOpen(id: StreamID, window: UInt32, target: StreamTarget) throws(LinkError) {
        guard !role.opens(id) else { throw .protocolViolation("OPEN for stream \(id), an id of ours") }
        let (isNew, isAccepting) = state.withLock { state in
            guard id > state.highestPeerStreamID else { return (false, false) }
            state.highestPeerStreamID = id
            return (true, state.closeReason == nil && !state.isDraining)
        }
        guard isNew else { throw .protocolViolation("OPEN for stream \(id) does not increase the stream id") }
        // An OPEN that crossed our GOAWAY, or one beyond the agent's stream limit, is answered with RESET.
        guard isAccepting else { return try answer(.reset(id, .aborted)) }
        guard limiter.tryAcquire() else {
            refusals.log(logger, level: .warning, "refused stream \(id): \(limiter.refusal)")
            return try answer(.reset(id, .tooManyStreams))
        }
        let stream = Stream(id: id, link: self, window: makeReceiveWindow(), sendCredit: Int(window))
        // Checked again with the insert, under `state`'s lock, so that neither `close` nor `beginDrain` can run
        // between them: a drain that began meanwhile has counted its streams without this one.
        let registration: Bool? = state.withLock { state in
            guard state.closeReason == nil else { return nil }
            guard !state.isDraining else { return false }
            streams.insert(stream)
            return true
        }
        switch registration {
        case nil: return stream.abandon()  // the link is closing; nothing to answer
        case false: return stream.refuse(.aborted)  // it crossed our GOAWAY
        case true: break
        }
        logger.debug("stream \(id) opened to \(target) by the peer")
        guard let delegate else { return stream.refuse(.aborted) }
        delegate.link(self, didOpen: stream, to: target)
    }

    // MARK: The writer thread

    private func runWriter(_ encoder: FrameEncoder) {
        var encoder = encoder
        var paddedBatchesLeft = Limits.paddedOpeningBatches
        writing: while true {
            var frames: [Frame]
            switch queue.next(maxBytes: Limits.writerBatchBytes, idleTimeout: settings.keepaliveInterval) {
            case .closed: break writing
            case .idle: frames = [makePing()]
            case .frames(let batch): frames = batch
            }
            // The opening exchange of a link or a stream has fixed frame sizes (OPEN, OPEN_OK, the first PING);
            // padding hides them from an observer who sees only the sizes of sealed segments.
            if paddedBatchesLeft > 0 || frames.contains(where: \.opensStream) {
                paddedBatchesLeft = max(0, paddedBatchesLeft - 1)
                frames.append(.padding(count: Int.random(in: Limits.openingPadding)))
            }
            do throws(LinkError) {
                for frame in frames {
                    if !encoder.canAppend(frame) { try flush(&encoder) }
                    do {
                        try encoder.append(frame)
                    } catch {
                        throw .protocolViolation(error.description)
                    }
                }
                try flush(&encoder)
            } catch {
                close(error)
                break writing
            }
        }
        socket.shutdown(.write)  // after a clean finish this tells the peer we are done
        threadDidFinish()
    }

    /// Sends the encoder's sealed bytes with one send(2) call sequence and empties it.
    private func flush(_ encoder: inout FrameEncoder) throws(LinkError) {
        do {
            try socket.sendAll(encoder.output.bytes)
        } catch {
            throw error.isTimeout ? .peerStalled(seconds: Int(settings.deadLinkTimeout)) : .socket(error)
        }
        encoder.output.count = 0
    }

    private func threadDidFinish() {
        let reason: LinkError? = state.withLock { state in
            state.runningThreads -= 1
            return state.runningThreads == 0 ? state.closeReason ?? .localShutdown : nil
        }
        guard let reason else { return }
        socket.close()
        roundTripGauge.destroy()
        delegate?.linkDidClose(self, reason: reason)
        finished.complete()
    }
}
