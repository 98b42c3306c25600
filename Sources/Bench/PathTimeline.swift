/// When what enters a path now comes out at its far end: the path's bottleneck sends at `bytesPerSecond`
/// behind whatever it already holds, then each byte travels for `delay`. With a `queueLimit`, the bottleneck
/// holds at most that many bytes and drops what would not fit (drop-tail, as a router's full queue does).
///
/// A pure value: the caller passes the time, so tests need no clock.
struct PathTimeline: Sendable {
    /// One-way propagation delay.
    let delay: Duration
    /// The bottleneck's rate; nil for none (everything leaves at once).
    let bytesPerSecond: Double?
    /// Most bytes the bottleneck holds; nil for no limit.
    let queueLimit: Int?
    /// When the bottleneck will have sent everything admitted so far.
    private var wireFreeAt: ContinuousClock.Instant?

    init(delay: Duration, bytesPerSecond: Double?, queueLimit: Int?) {
        self.delay = delay
        self.bytesPerSecond = bytesPerSecond
        self.queueLimit = queueLimit
    }

    /// Bytes the bottleneck still holds at `now`.
    func queuedBytes(at now: ContinuousClock.Instant) -> Int {
        guard let bytesPerSecond, let wireFreeAt, wireFreeAt > now else { return 0 }
        return Int((now.duration(to: wireFreeAt).seconds * bytesPerSecond).rounded(.up))
    }

    /// Admits `size` bytes entering at `now` and returns when they reach the far end, or nil if the
    /// bottleneck's queue has no room for them (they are dropped and change nothing).
    mutating func admit(_ size: Int, at now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        if let queueLimit, queuedBytes(at: now) + size > queueLimit { return nil }
        return pass(size, at: now)
    }

    /// Sends `size` bytes entering at `now` whatever the queue holds (for a sender that bounds what it queues
    /// itself) and returns when they reach the far end.
    mutating func pass(_ size: Int, at now: ContinuousClock.Instant) -> ContinuousClock.Instant {
        let start = max(now, wireFreeAt ?? now)
        let sent = start + (bytesPerSecond.map { Duration.seconds(Double(size) / $0) } ?? .zero)
        wireFreeAt = sent
        return sent + delay
    }
}
