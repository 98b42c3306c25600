import DequeModule
import Glibc

/// The lock-protected queue that feeds a link's writer thread, the only thread that writes the link socket.
///
/// Control frames (OPEN, OPEN_OK, RESET, WINDOW, PING, PONG, GOAWAY) always go before data frames and never
/// wait, so credit and liveness keep flowing while data is backed up.
///
/// Data frames (DATA, FIN) wait in a queue per stream, in order, and the writer takes them by deficit round
/// robin: each stream in turn sends up to a quantum (one full DATA frame) before the next. A stream that had
/// nothing queued joins the round ahead of the streams that stayed backed up, so an interactive stream's small
/// frame goes before the next chunk of every bulk stream instead of behind all that is queued (as fq_codel
/// treats sparse flows). All data queued waits in `dataLimit` bytes: a pusher whose stream already has data
/// queued waits while the queue is full, which bounds the memory fast senders can pin; a stream with nothing
/// queued may always queue one frame, so bulk streams that keep the queue full cannot hold it back.
///
/// Two condition variables on one mutex, so that each wake-up reaches only a thread that can act on it: the
/// writer waits on `framesQueued`, data pushers on `spaceFreed`, and a pusher that finds room left passes the
/// signal on. (With one condition for both, every frame woke every waiting stream thread: with 1,000 streams
/// backed up, bulk throughput fell to a tenth.)
///
/// Datagrams of every flow wait in one more lane of the round, keyed `datagramLane` (no stream has id 0), so they
/// take their turn like a stream: a datagram waits behind at most a quantum of each bulk stream, never behind all
/// that is queued. The lane never makes a pusher wait: a datagram that finds `datagramLimit` bytes queued is
/// dropped, as UDP drops what a full path cannot take.
///
/// Answers the peer forces (PONG, RESET for an OPEN refused at once) are control frames too, but counted: at
/// most `answerLimit` wait at once, so that a peer that sends PINGs or OPENs and never reads cannot make the
/// queue grow without end.
///
/// `@unchecked Sendable`: `control`, `queuedAnswers`, `streams`, `newcomers`, `backlogged`, `dataBytes`,
/// `datagramBytes`, `resetStreams`, `phase` and `writerInterrupted` are guarded by `mutex`.
final class OutboundQueue: @unchecked Sendable {
    /// What the writer should do next.
    enum Next {
        /// Seal and send these frames, in this order.
        case frames([OutboundFrame])
        /// Nothing was queued for the whole idle interval.
        case idle
        /// The queue was closed, or finished and drained: the writer should stop.
        case closed
        /// `interruptWriter()` was called: the writer should check that its connection is still the link's.
        case interrupted
    }

    private enum Phase {
        case open
        /// No more pushes; the writer drains what is queued, then stops.
        case finishing
        case closed
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let framesQueued = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let spaceFreed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Control frames, each marked if it is an answer the peer forced.
    private var control = Deque<(frame: Frame, isAnswer: Bool)>()
    private var queuedAnswers = 0
    private let answerLimit: Int
    /// Each stream's queued data frames, in order, and what it may still send in this round.
    private var streams: [StreamID: StreamBacklog] = [:]
    /// Streams that had nothing queued when their data came: served first, each up to a quantum.
    private var newcomers = Deque<StreamID>()
    /// Streams that used their quantum and still have data queued: served in turn after the newcomers.
    private var backlogged = Deque<StreamID>()
    /// Payload bytes queued over all streams.
    private var dataBytes = 0
    /// Datagram bytes queued in the datagram lane.
    private var datagramBytes = 0
    private let datagramLimit: Int
    /// Streams reset and not yet retired: their DATA and FIN are refused, so that none follows their RESET, even
    /// from an uplink that read its bytes before the reset.
    private var resetStreams: Set<StreamID> = []
    private var phase = Phase.open
    private let dataLimit: Int
    /// Set by `interruptWriter()` until the writer's next `next` returns `.interrupted`.
    private var writerInterrupted = false

    /// A queue that makes data pushers wait once `dataLimit` payload bytes are queued, drops datagrams beyond
    /// `datagramLimit` bytes queued, and refuses answers beyond `answerLimit` waiting at once.
    init(
        dataLimit: Int, datagramLimit: Int = Limits.datagramQueueBytes, answerLimit: Int = Limits.maxQueuedAnswers
    ) {
        self.dataLimit = dataLimit
        self.datagramLimit = datagramLimit
        self.answerLimit = answerLimit
        pthread_mutex_init(mutex, nil)
        MonotonicClock.initialise(framesQueued)  // the writer's idle wait must not follow wall-clock steps
        pthread_cond_init(spaceFreed, nil)
    }

    deinit {
        pthread_cond_destroy(spaceFreed)
        pthread_cond_destroy(framesQueued)
        pthread_mutex_destroy(mutex)
        spaceFreed.deallocate()
        framesQueued.deallocate()
        mutex.deallocate()
    }

    private func lock() { pthread_mutex_lock(mutex) }
    private func unlock() { pthread_mutex_unlock(mutex) }

    // MARK: Called by any thread

    /// Queues a control frame. Never waits; dropped if the queue no longer accepts frames.
    func pushControl(_ frame: Frame) {
        lock()
        guard phase == .open else { return unlock() }
        control.append((frame, false))
        unlock()
        wakeWriter()
    }

    /// Queues an answer the peer's own frame forced (PONG, or RESET for an OPEN refused at once), like a
    /// control frame. Returns `false`, queueing nothing, when `answerLimit` answers already wait: the peer is
    /// not reading them. Dropped (and `true`) if the queue no longer accepts frames.
    func pushAnswer(_ frame: Frame) -> Bool {
        lock()
        guard phase == .open else {
            unlock()
            return true
        }
        guard queuedAnswers < answerLimit else {
            unlock()
            return false
        }
        queuedAnswers += 1
        control.append((frame, true))
        unlock()
        wakeWriter()
        return true
    }

    /// Queues stream `id`'s DATA or FIN behind its data already queued, waiting while the queue is full and the
    /// stream has data queued. Returns `false` if the queue closed instead; nothing was queued.
    func pushData(_ output: StreamOutput, of id: StreamID) -> Bool {
        let size = output.dataSize
        lock()
        while phase == .open && !resetStreams.contains(id) && streams[id] != nil && dataBytes + size > dataLimit {
            pthread_cond_wait(spaceFreed, mutex)
        }
        guard phase == .open, !resetStreams.contains(id) else {
            unlock()
            return false
        }
        if streams[id] == nil {
            streams[id] = StreamBacklog(deficit: Self.quantum)
            newcomers.append(id)
        }
        streams[id]!.outputs.append(output)
        dataBytes += size
        let roomLeft = dataBytes < dataLimit
        unlock()
        wakeWriter()
        if roomLeft { pthread_cond_signal(spaceFreed) }  // room for the next waiter too
        return true
    }

    /// Queues one datagram of `flow` in the datagram lane. Never waits: returns `false`, queueing nothing, when the
    /// lane already holds `datagramLimit` bytes or the queue no longer accepts frames.
    func pushDatagram(_ payload: [UInt8], of flow: FlowID) -> Bool {
        lock()
        guard phase == .open, datagramBytes + payload.count <= datagramLimit else {
            unlock()
            return false
        }
        let lane = Self.datagramLane
        if streams[lane] == nil {
            streams[lane] = StreamBacklog(deficit: Self.quantum)
            newcomers.append(lane)
        }
        streams[lane]!.outputs.append(
            .datagram(QueuedDatagram(flow: flow, payload: payload, queuedAt: MonotonicClock.nanoseconds())))
        datagramBytes += payload.count
        unlock()
        wakeWriter()
        return true
    }

    /// Stream `id` was reset: drops its queued DATA and FIN, queues `reset` (its RESET, when one is to be sent)
    /// as a control frame, and refuses the stream's DATA and FIN from now on until `forget(id)`; its pusher, if
    /// it waits for room, wakes and queues nothing. Never waits.
    func resetStream(_ id: StreamID, sending reset: Frame?) {
        lock()
        resetStreams.insert(id)
        if let backlog = streams.removeValue(forKey: id) {
            dataBytes -= backlog.outputs.reduce(0) { $0 + $1.dataSize }
            newcomers.removeAll { $0 == id }
            backlogged.removeAll { $0 == id }
        }
        pthread_cond_broadcast(spaceFreed)  // its pusher leaves, and the room its data took is free
        guard phase == .open, let reset else { return unlock() }
        control.append((reset, false))
        unlock()
        wakeWriter()
    }

    /// Stream `id` has retired: no thread of it pushes any more, so the queue need not remember it was reset.
    func forget(_ id: StreamID) {
        lock()
        defer { unlock() }
        resetStreams.remove(id)
    }

    /// Accepts no more frames; the writer still gets what is queued, then `.closed`.
    func finish() {
        lock()
        defer { unlock() }
        if phase == .open { phase = .finishing }
        wakeEveryone()
    }

    /// Drops everything queued and wakes every waiter; pushes fail from now on.
    func close() {
        lock()
        defer { unlock() }
        phase = .closed
        control.removeAll()
        queuedAnswers = 0
        streams.removeAll()
        newcomers.removeAll()
        backlogged.removeAll()
        dataBytes = 0
        datagramBytes = 0
        wakeEveryone()
    }

    /// Makes the writer's current or next `next` return `.interrupted`: the link stopped using its connection,
    /// and frames queued from now on are for the next one. Frames stay queued.
    func interruptWriter() {
        lock()
        writerInterrupted = true
        unlock()
        wakeWriter()
    }

    /// Payload bytes of DATA and datagrams queued now.
    var queuedBytes: Int {
        lock()
        defer { unlock() }
        return dataBytes + datagramBytes
    }

    /// Wakes the writer if it waits for frames. Called after unlocking, not before: a writer woken while the
    /// pusher still holds the mutex only blocks on the mutex at once, and sleeps and wakes a second time.
    /// Safe without the mutex, because the writer checks for frames under it before each wait.
    private func wakeWriter() { pthread_cond_signal(framesQueued) }

    private func wakeEveryone() {
        pthread_cond_broadcast(framesQueued)
        pthread_cond_broadcast(spaceFreed)
    }

    // MARK: Called by the writer thread

    /// Waits up to `idleTimeout` seconds for frames and returns control frames first, then data frames by
    /// round robin over the streams, up to about `maxBytes` of payload (always at least one frame).
    func next(maxBytes: Int, idleTimeout: Double) -> Next {
        lock()
        defer { unlock() }
        var deadline = MonotonicClock.deadline(after: .seconds(idleTimeout))
        while phase == .open && control.isEmpty && streams.isEmpty && !writerInterrupted {
            if pthread_cond_timedwait(framesQueued, mutex, &deadline) == ETIMEDOUT && control.isEmpty
                && streams.isEmpty && !writerInterrupted
            {
                return .idle
            }
        }
        if writerInterrupted {
            writerInterrupted = false
            return .interrupted
        }
        if phase == .closed || (control.isEmpty && streams.isEmpty) { return .closed }
        var batch: [OutboundFrame] = []
        while let (frame, isAnswer) = control.popFirst() {
            batch.append(.frame(frame))
            if isAnswer { queuedAnswers -= 1 }
        }
        var taken = 0
        while batch.isEmpty || taken < maxBytes, let frame = takeDataFrame() {
            taken += frame.dataSize
            batch.append(frame)
        }
        if taken > 0 { pthread_cond_signal(spaceFreed) }
        return .frames(batch)
    }

    /// The next data frame by deficit round robin, or nil when none is queued. Called with the lock held.
    private func takeDataFrame() -> OutboundFrame? {
        while true {
            let isNewcomer = !newcomers.isEmpty
            guard let id = isNewcomer ? newcomers.first : backlogged.first else { return nil }
            if streams[id]!.deficit <= 0 {
                // Its quantum is spent: it goes to the back of the round with a new one.
                streams[id]!.deficit += Self.quantum
                if isNewcomer { newcomers.removeFirst() } else { backlogged.removeFirst() }
                backlogged.append(id)
                continue
            }
            let output = streams[id]!.outputs.removeFirst()
            let size = output.dataSize
            streams[id]!.deficit -= size
            if streams[id]!.outputs.isEmpty {
                streams[id] = nil
                if isNewcomer { newcomers.removeFirst() } else { backlogged.removeFirst() }
            }
            switch output {
            case .data(let block):
                dataBytes -= size
                return .data(id, block)
            case .fin: return .frame(.fin(id))
            case .datagram(let datagram):
                datagramBytes -= size
                return .datagram(datagram)
            }
        }
    }

    /// What a stream may send per turn: one full DATA frame, so a turn is never shorter than a frame.
    static let quantum = Limits.maxDataPayload

    /// The key of the datagram lane among the streams' backlogs: 0, the id no stream has.
    static let datagramLane: StreamID = 0
}

/// What a stream queues for the link, in order: DATA, in a block of its own, or its FIN; or, in the datagram
/// lane, one datagram of a flow.
enum StreamOutput {
    case data(DataBlock)
    case fin
    case datagram(QueuedDatagram)

    /// Payload bytes, which count against the stream's turn and the queue's limit of their kind.
    var dataSize: Int {
        switch self {
        case .data(let block): block.count
        case .fin: 0
        case .datagram(let datagram): datagram.payload.count
        }
    }
}

/// One stream's DATA and FIN waiting in the outbound queue, and what it may still send in this round.
private struct StreamBacklog {
    var outputs = Deque<StreamOutput>()
    /// Payload bytes the stream may still send before its turn ends; a frame may take it below zero.
    var deficit: Int
}
