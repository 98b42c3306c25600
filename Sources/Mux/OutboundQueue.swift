import DequeModule
import Foundation

/// The lock-protected queue that feeds a link's writer thread, the only thread that writes the link socket.
///
/// Control frames (OPEN, OPEN_OK, RESET, WINDOW, PING, PONG, GOAWAY) always go before data frames and never
/// wait, so credit and liveness keep flowing while data is backed up. Data frames (DATA, FIN) keep their order
/// and wait while `dataLimit` bytes are queued, which bounds the memory a fast sender can pin.
///
/// `@unchecked Sendable`: `control`, `data`, `dataBytes` and `phase` are guarded by `condition`.
final class OutboundQueue: @unchecked Sendable {
    /// What the writer should do next.
    enum Next {
        /// Seal and send these frames, in this order.
        case frames([Frame])
        /// Nothing was queued for the whole idle interval.
        case idle
        /// The queue was closed, or finished and drained: the writer should stop.
        case closed
    }

    private enum Phase {
        case open
        /// No more pushes; the writer drains what is queued, then stops.
        case finishing
        case closed
    }

    private let condition = NSCondition()
    private var control = Deque<Frame>()
    private var data = Deque<Frame>()
    private var dataBytes = 0
    private var phase = Phase.open
    private let dataLimit: Int

    /// A queue that makes data pushers wait once `dataLimit` payload bytes are queued.
    init(dataLimit: Int) {
        self.dataLimit = dataLimit
    }

    // MARK: Called by any thread

    /// Queues a control frame. Never waits; dropped if the queue no longer accepts frames.
    func pushControl(_ frame: Frame) {
        condition.lock()
        defer { condition.unlock() }
        guard phase == .open else { return }
        control.append(frame)
        condition.broadcast()
    }

    /// Queues a DATA or FIN frame behind the data already queued, waiting while the queue is full.
    /// Returns `false` if the queue closed instead; the frame was not queued.
    func pushData(_ frame: Frame) -> Bool {
        let size = Self.dataSize(of: frame)
        condition.lock()
        defer { condition.unlock() }
        while phase == .open && dataBytes > 0 && dataBytes + size > dataLimit {
            condition.wait()
        }
        guard phase == .open else { return false }
        data.append(frame)
        dataBytes += size
        condition.broadcast()
        return true
    }

    /// Accepts no more frames; the writer still gets what is queued, then `.closed`.
    func finish() {
        condition.lock()
        defer { condition.unlock() }
        if phase == .open { phase = .finishing }
        condition.broadcast()
    }

    /// Drops everything queued and wakes every waiter; pushes fail from now on.
    func close() {
        condition.lock()
        defer { condition.unlock() }
        phase = .closed
        control.removeAll()
        data.removeAll()
        dataBytes = 0
        condition.broadcast()
    }

    // MARK: Called by the writer thread

    /// Waits up to `idleTimeout` seconds for frames and returns control frames first, then data frames, up to
    /// about `maxBytes` of payload (always at least one frame).
    func next(maxBytes: Int, idleTimeout: Double) -> Next {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: idleTimeout)
        while phase == .open && control.isEmpty && data.isEmpty {
            if !condition.wait(until: deadline) && control.isEmpty && data.isEmpty { return .idle }
        }
        if phase == .closed || (control.isEmpty && data.isEmpty) { return .closed }
        var batch: [Frame] = []
        while let frame = control.popFirst() { batch.append(frame) }
        var taken = 0
        while let frame = data.first, batch.isEmpty || taken < maxBytes {
            data.removeFirst()
            let size = Self.dataSize(of: frame)
            taken += size
            dataBytes -= size
            batch.append(frame)
        }
        if taken > 0 { condition.broadcast() }
        return .frames(batch)
    }

    private static func dataSize(of frame: Frame) -> Int {
        if case .data(_, let bytes) = frame { return bytes.count }
        return 0
    }
}
