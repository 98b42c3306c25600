import CoreMetrics
import Crypto
import Logging

/// One encrypted link between a local and a remote agent, carrying many streams.
///
/// Threads: the reader thread (`Link+Reader.swift`) is the only one that reads `channel`; it decodes frames and
/// hands them to streams without ever blocking on one. The writer thread (`Link+Writer.swift`) is the only one
/// that writes `channel`, draining `queue`. Either thread may end the link; `channel` is closed once, after
/// both have finished.
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

    struct State {
        var closeReason: LinkError?
        /// We sent GOAWAY: no new streams; the link ends once the streams in flight have.
        var isDraining = false
        /// The peer sent GOAWAY: open no new streams here.
        var peerIsDraining = false
        /// The id the next stream we open gets. Ids increase and are never reused within a link.
        var nextStreamID: StreamID
        /// The highest id the peer has opened.
        var highestPeerStreamID: StreamID = 0
        /// The id the next flow we open gets; flows count apart from streams, in the same parity.
        var nextFlowID: FlowID
        /// The highest flow id the peer has opened.
        var highestPeerFlowID: FlowID = 0
        /// The remote agent's instance, once its AGENT_ID arrived (local role).
        var peerAgentID: UInt64?
        /// Reader and writer threads still running.
        var runningThreads = 2
    }

    let role: Role
    /// The other agent's address.
    let peer: Endpoint
    /// How log lines name this link: `link 2 to 192.0.2.1:7000` on a local agent, `link from …` on a remote one.
    let name: String
    let settings: LinkSettings
    let logger: Logger
    /// Frames waiting for the writer thread.
    let queue: OutboundQueue
    /// Blocks for the DATA the streams send: taken by their uplinks, given back by the writer once sealed.
    let blocks: DataBlockPool
    /// Bytes received but not yet consumed, across all streams.
    let budget: ReceiveBudget
    /// Completed when both link threads have ended and the channel is closed.
    let finished = Completion()
    /// Completed when the remote agent has named its instance (local role; see `Frame.agentID`).
    let identified = Completion()
    /// Completed when the link stops taking new streams: it closed, or either side sent GOAWAY.
    let stoppedOpening = Completion()
    /// Completed when the link is draining and its last stream has ended.
    private let drained = Completion()
    /// The cap on streams; every stream on this link holds one of its slots until it ends.
    let slots: any SlotPool
    /// What this link and its streams count.
    let metrics: LinkMetrics
    let channel: any LinkChannel
    let streams = IDTable<Stream>()
    /// The flows carried by this link, by id: each id's end here, which the reader hands its datagrams.
    let flows = IDTable<any FlowEndpoint>()
    let state: Locked<State>
    /// The agent that owns this link. Weak, because the agent holds its links: once the agent is gone, streams
    /// the peer opens are refused and control messages are dropped.
    private(set) weak var delegate: (any LinkDelegate)?
    /// Throttles the warning for streams refused at the limit.
    let refusals = LogThrottle()

    private let keys: (sealer: FrameSealer, opener: FrameOpener)
    /// The zero of PING values: each PING carries nanoseconds since then, so its PONG gives the round trip.
    private let epoch = ContinuousClock.now
    /// The last round-trip time measured by PING, read when windows auto-tune.
    private let measuredRoundTrip = Locked<Duration?>(nil)

    /// A link over `channel`, already authenticated with the peer at `peer`, which it now owns; `start()` runs it
    /// and reports to `delegate` from then on. Its streams' windows come out of its own receive budget and, when
    /// given, out of `agentBudget`, which all the agent's links share.
    init(
        channel: any LinkChannel, peer: Endpoint, keys: (sealer: FrameSealer, opener: FrameOpener), role: Role,
        settings: LinkSettings, slots: any SlotPool, agentBudget: ReceiveBudget? = nil, metrics: LinkMetrics,
        logger: Logger, delegate: any LinkDelegate, name: String? = nil
    ) {
        self.channel = channel
        self.peer = peer
        self.name = name ?? (role == .local ? "link to \(peer)" : "link from \(peer)")
        self.metrics = metrics
        self.keys = keys
        self.role = role
        self.settings = settings
        self.slots = slots
        self.logger = logger
        self.delegate = delegate
        state = Locked(State(nextStreamID: role.firstStreamID, nextFlowID: role.firstStreamID))
        queue = OutboundQueue(dataLimit: settings.outboundQueueBytes)
        // As many free blocks as a full queue holds, so that bulk streams keeping it full allocate none.
        blocks = DataBlockPool(limit: settings.outboundQueueBytes / Limits.maxDataPayload)
        budget = ReceiveBudget(bytes: settings.linkReceiveBudget, within: agentBudget)
    }

    /// Starts the reader and writer threads. On failure the link ends: its channel is closed, at once or when
    /// the writer thread has stopped.
    func start() throws(LinkError) {
        // A peer that takes none of our bytes for the dead-link timeout is as dead as one that sends none.
        channel.setTimeouts(receive: settings.deadLinkTimeout, send: settings.deadLinkTimeout)
        let (sealer, opener) = keys
        do {
            try startThread(named: "link-writer") { self.runWriter(FrameEncoder(sealer: sealer)) }
        } catch {
            channel.close()
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

    func makePing() -> Frame {
        .ping(UInt64((ContinuousClock.now - epoch).nanoseconds))
    }

    /// Takes the round trip from a PONG's echoed send time; values a peer could not have echoed are ignored.
    func recordPong(_ value: UInt64) {
        let elapsed = (ContinuousClock.now - epoch).nanoseconds
        guard value <= elapsed else { return }
        measuredRoundTrip.withLock { $0 = .nanoseconds(elapsed - Int64(value)) }
        metrics.roundTrip.record(Double(elapsed - Int64(value)) / 1e9)
    }

    /// The number of streams open on this link.
    var streamCount: Int { streams.count }

    /// The remote agent's instance, once it said it (local role; see `Frame.agentID`).
    var peerAgentID: UInt64? { state.withLock { $0.peerAgentID } }

    /// Whether the link has ended or is ending.
    var isClosed: Bool { state.withLock { $0.closeReason != nil } }

    /// Whether new streams may be opened on this link.
    var isOpenForStreams: Bool {
        state.withLock { $0.closeReason == nil && !$0.isDraining && !$0.peerIsDraining }
    }

    // MARK: Called by agents and stream threads

    /// Registers a stream for a newly accepted client and sends OPEN naming `target`. The caller holds a slot
    /// of `slots`, which the stream returns when it ends. With `client`, the stream owns it at once and may
    /// carry its first bytes before the peer answers (0-RTT: `Stream.run`); without, the caller attaches the
    /// client once the peer accepted (`Stream.awaitEstablished`, `Stream.attach`). The OPEN tells the peer the
    /// client's `origin`. Returns `nil` if the link takes no new streams; the slot and `client` are then still
    /// the caller's.
    func openStream(
        to target: StreamTarget, from origin: StreamOrigin? = nil, carrying client: (any ByteChannel)? = nil
    ) -> Stream? {
        let window = makeReceiveWindow()
        let stream: Stream? = state.withLock { state in
            guard state.closeReason == nil, !state.isDraining, !state.peerIsDraining,
                state.nextStreamID <= .max - 2
            else { return nil }
            let stream = Stream(
                id: state.nextStreamID, link: self, window: window, sendCredit: Limits.openingWindow, channel: client)
            state.nextStreamID += 2
            // Both under `state`'s lock: `close` cannot miss the stream, and OPENs reach the queue in id order.
            streams.insert(stream, at: stream.id)
            queue.pushControl(.open(stream.id, window: UInt32(window.size), target: target, origin: origin))
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
        channel.shutdown(.both)
        streams.visitAll { $0.linkDidClose() }
        closeAllFlows()
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

    /// Resets the streams still running and lets the writer flush what is queued and half-close the TCP
    /// connection; returns at once. `closeUnlessFinished(by:)` then ends the link.
    func resetAndFinish() {
        beginDrain()
        streams.visitAll { $0.abort(sending: .aborted) }
        queue.finish()
    }

    /// Waits until `deadline` for the peer to close its side after `resetAndFinish()`; if it has not, closes the
    /// link. Returns whether the link had finished by itself.
    @discardableResult
    func closeUnlessFinished(by deadline: ContinuousClock.Instant) -> Bool {
        guard !finished.wait(until: deadline) else { return true }
        close(.localShutdown)
        return false
    }

    /// Waits until the link's threads have ended, or `deadline`; returns whether they have.
    @discardableResult
    func waitUntilFinished(deadline: ContinuousClock.Instant) -> Bool {
        finished.wait(until: deadline)
    }

    /// Called by a stream when its last thread ended.
    func streamDidEnd(id: StreamID, summary: String) {
        streams.remove(id)
        slots.release()
        logger.debug("stream \(id) closed: \(summary)")
        if state.withLock({ $0.isDraining }) && streams.count == 0 { drained.complete() }
    }

    func makeReceiveWindow() -> ReceiveWindow {
        let size = budget.reserve(upTo: settings.streamWindow, atLeast: Limits.minimumStreamWindow)
        return ReceiveWindow(size: size, targetSize: settings.streamWindow, maxSize: settings.maxStreamWindow)
    }

    func threadDidFinish() {
        let reason: LinkError? = state.withLock { state in
            state.runningThreads -= 1
            return state.runningThreads == 0 ? state.closeReason ?? .localShutdown : nil
        }
        guard let reason else { return }
        channel.close()
        metrics.roundTrip.destroy()
        delegate?.linkDidClose(self, reason: reason)
        finished.complete()
    }
}
