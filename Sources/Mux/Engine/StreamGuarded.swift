import DequeModule

/// A stream's mutable state, in one place so that one lock (the stream's `condition`) visibly guards all of it.
struct StreamGuarded {
    /// The connection the stream carries, from `attach` or `accept` until the stream retires.
    var channel: (any ByteChannel)?
    var lifecycle: StreamLifecycle
    /// How the peer answered our OPEN, or how the stream ended before an answer; nil while it is unanswered.
    var openOutcome: Stream.OpenOutcome?
    /// Bytes we may still send before the peer's next WINDOW frame.
    var sendCredit: Int
    /// DATA received and not yet written to the connection (on the answering end, also what the opener sent
    /// before the target was connected); its size is bounded by `window`.
    var inbound = Deque<[UInt8]>()
    var window: ReceiveWindow
    /// Why the stream was reset: the peer's reason, or the one we sent.
    var resetReason: ResetReason?
    var traffic = StreamTraffic()

    init(isOpener: Bool, window: ReceiveWindow, sendCredit: Int) {
        lifecycle = StreamLifecycle(isOpener: isOpener)
        self.window = window
        self.sendCredit = sendCredit
    }
}

/// What a stream carried, and when it last carried anything (for the idle timeout).
struct StreamTraffic {
    private(set) var bytesUp = 0
    private(set) var bytesDown = 0
    /// When a byte last moved in either direction.
    private(set) var lastActivity = ContinuousClock.now

    /// `count` bytes read from the connection and sent to the peer.
    mutating func recordUp(_ count: Int) {
        bytesUp += count
        lastActivity = .now
    }

    /// `count` bytes from the peer written to the connection.
    mutating func recordDown(_ count: Int) {
        bytesDown += count
        lastActivity = .now
    }

    /// The stream's totals, for its closing log line.
    var summary: String { "up \(bytesUp) B, down \(bytesDown) B" }
}
