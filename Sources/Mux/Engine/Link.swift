import CoreMetrics
import Crypto
import Logging
import Synchronization

/// One encrypted link between a local and a remote agent, carrying many streams: a session that runs on one
/// connection at a time (`LinkConnection`) and, when it has a `resumption`, outlives a connection that breaks by
/// continuing on the next one (`Link+Connections.swift`, docs/PROTOCOL.md §10).
///
/// Threads: per connection, the reader thread (`Link+Reader.swift`) is the only one that reads it; it decodes
/// frames and hands them to streams without ever blocking on one. The writer thread (`Link+Writer.swift`) is the
/// only one that writes it, draining `queue`. Either thread may end the connection, and with it the link or
/// only its use of that connection; the next connection's threads start once both have ended.
///
/// `@unchecked Sendable`: stored properties are immutable or Sendable (the weak `delegate` is set once, in `init`);
/// mutable state is in `state` and `sent` (each a `Locked`) and `receivedFrames` (written by the reader only).
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
        /// The connection the link runs on now (or ran on last, once it closed); `nil` while its session waits to
        /// resume.
        var connection: LinkConnection?
        /// Why and since when the link has had no connection, while its session waits to resume.
        var detachment: Detachment?
        /// The connection the link ran on last, while it may still be ending after the link stopped using it.
        /// Weak: once its threads have ended nothing else holds it, and its buffers and keys are freed, so that a
        /// session waiting to resume holds no connection's memory.
        weak var previous: LinkConnection?
        /// The connection the session begins on, until `start()` runs the link on it.
        var first: LinkConnection?
        /// Link threads running, over all its connections.
        var runningThreads = 0
        /// Whether the link has ended for good and told its delegate.
        var hasFinished = false
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
    /// Completed when the link has ended for good and its last thread has finished.
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
    let streams = IDTable<Stream>()
    /// The flows carried by this link, by id: each id's end here, which the reader hands its datagrams.
    let flows = IDTable<any FlowEndpoint>()
    let state: Locked<State>
    /// The agent that owns this link. Weak, because the agent holds its links: once the agent is gone, streams
    /// the peer opens are refused and control messages are dropped.
    private(set) weak var delegate: (any LinkDelegate)?
    /// Throttles the warning for streams refused at the limit.
    let refusals = LogThrottle()
    /// The session's id and resume key, when it may continue on a new connection; without, the link ends with
    /// its connection.
    let resumption: SessionResumption?
    /// The sequenced frames sent and not yet acknowledged, kept to be sent again (only with a `resumption`).
    let sent = Locked(SentFrames())
    /// The peer's sequenced frames processed so far in the session. Written by the reader thread only.
    let receivedFrames = Atomic<UInt64>(0)
    /// The zero of PING values: each PING carries nanoseconds since then, so its PONG gives the round trip.
    private let epoch = ContinuousClock.now
    /// The last round-trip time measured by PING, read when windows auto-tune.
    private let measuredRoundTrip = Locked<Duration?>(nil)

    /// A link whose session begins on `connection`, which it now owns; `start()` runs it and reports to
    /// `delegate` from then on. With `resumption`, the session may continue on later connections (`resume`). Its
    /// streams' windows come out of its own receive budget and, when given, out of `agentBudget`, which all the
    /// agent's links share.
    init(
        connection: LinkConnection, resumption: SessionResumption? = nil, role: Role, settings: LinkSettings,
        slots: any SlotPool, agentBudget: ReceiveBudget? = nil, metrics: LinkMetrics, logger: Logger,
        delegate: any LinkDelegate, name: String? = nil
    ) {
        peer = connection.peer
        self.name = name ?? (role == .local ? "link to \(connection.peer)" : "link from \(connection.peer)")
        self.metrics = metrics
        self.resumption = resumption
        self.role = role
        self.settings = settings
        self.slots = slots
        self.logger = logger
        self.delegate = delegate
        state = Locked(State(nextStreamID: role.firstStreamID, nextFlowID: role.firstStreamID, first: connection))
        queue = OutboundQueue(dataLimit: settings.outboundQueueBytes)
        // As many free blocks as a full queue holds, so that bulk streams keeping it full allocate none.
        blocks = DataBlockPool(limit: settings.outboundQueueBytes / Limits.maxDataPayload)
        budget = ReceiveBudget(bytes: settings.linkReceiveBudget, within: agentBudget)
    }

    /// Starts the reader and writer threads on the connection the session begins on. On failure the link ends:
    /// its connection is closed, at once or when the writer thread has stopped.
    func start() throws(LinkError) {
        guard let first = state.withLock({ $0.first.take() }) else { preconditionFailure("a link starts once") }
        do {
            try run(on: first)
        } catch .resources(let error) {
            throw .resources(error)  // the link has closed the connection
        } catch {
            first.channel.close()
            throw error
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

    /// Why the link ended, once it has.
    var closeReason: LinkError? { state.withLock { $0.closeReason } }

    /// Whether new streams may be opened on this link: it runs on a connection, and neither side is draining.
    var isOpenForStreams: Bool {
        state.withLock { $0.closeReason == nil && $0.connection != nil && !$0.isDraining && !$0.peerIsDraining }
    }

    // MARK: Called by agents and stream threads

    /// Registers a stream for a newly accepted client and sends OPEN naming `target`. The caller holds a slot
    /// of `slots`, which the stream returns when it ends. With `client`, the stream owns it at once and may
    /// carry its first bytes before the peer answers (0-RTT: `Stream.run`); without, the caller attaches the
    /// client once the peer accepted (`Stream.awaitEstablished`, `Stream.attach`). The OPEN tells the peer the
    /// client's `origin`; the stream counts its bytes into `forwardBytes` too, when given. Returns `nil` if the link takes no new streams; the slot and `client` are then still
    /// the caller's.
    func openStream(
        to target: StreamTarget, from origin: StreamOrigin? = nil, carrying client: (any ByteChannel)? = nil,
        counting forwardBytes: StreamCounters? = nil
    ) -> Stream? {
        let window = makeReceiveWindow()
        let stream: Stream? = state.withLock { state in
            guard state.closeReason == nil, !state.isDraining, !state.peerIsDraining,
                state.nextStreamID <= .max - 2
            else { return nil }
            let stream = Stream(
                id: state.nextStreamID, link: self, target: target, window: window, sendCredit: Limits.openingWindow,
                channel: client,
                counting: forwardBytes)
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
        if logger.logLevel <= .debug { stream.log(.debug, "stream \(stream.id) opened to \(target)") }
        return stream
    }

    /// Queues a link-level control frame (LISTEN, LISTEN_RESULT) for the peer.
    func send(_ frame: Frame) {
        precondition(frame.streamID == 0, "stream frames are sent by their stream")
        queue.pushControl(frame)
    }

    /// Ends the link now: aborts every stream that still needs it and wakes both threads, or, while its session
    /// waits to resume, ends that wait. Idempotent; the first reason wins.
    func close(_ reason: LinkError) {
        let (isFirst, connection, detachment, isIdle): (Bool, LinkConnection?, Detachment?, Bool) = state.withLock {
            state in
            guard state.closeReason == nil else { return (false, nil, nil, false) }
            state.closeReason = reason
            defer { state.detachment = nil }
            return (true, state.connection, state.detachment, state.runningThreads == 0)
        }
        guard isFirst else { return }
        stoppedOpening.complete()
        queue.close()
        connection?.shutDown()
        connection?.released.complete()
        detachment?.over.complete()
        streams.visitAll { $0.linkDidClose() }
        closeAllFlows()
        releaseSentFrames()
        if isIdle { finishIfEnded() }
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
    func streamDidEnd(id: StreamID, summary: String, metadata: Logger.Metadata) {
        streams.remove(id)
        slots.release()
        logger.debug("stream \(id) closed: \(summary)", metadata: metadata)
        if state.withLock({ $0.isDraining }) && streams.count == 0 { drained.complete() }
    }

    func makeReceiveWindow() -> ReceiveWindow {
        let size = budget.reserve(upTo: settings.streamWindow, atLeast: Limits.minimumStreamWindow)
        return ReceiveWindow(size: size, targetSize: settings.streamWindow, maxSize: settings.maxStreamWindow)
    }

    /// Called by each link thread as it ends, after its connection's `threadDidFinish`.
    func threadDidFinish() {
        state.withLock { $0.runningThreads -= 1 }
        finishIfEnded()
    }

    /// Reports the link's end once it has closed and no thread of it runs any more; once.
    func finishIfEnded() {
        let reason: LinkError? = state.withLock { state in
            guard !state.hasFinished, state.runningThreads == 0, let reason = state.closeReason else { return nil }
            state.hasFinished = true
            return reason
        }
        guard let reason else { return }
        metrics.release()
        delegate?.linkDidClose(self, reason: reason)
        finished.complete()
    }
}
