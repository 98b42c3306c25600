/// One datagram waiting for the writer, and when it was queued: the writer drops it once it has waited longer
/// than `Limits.maxDatagramWait`.
///
/// The time is `MonotonicClock` nanoseconds, not a `ContinuousClock.Instant`: the standard library's types have a
/// layout fixed only at run time, and one inside this payload made every copy of `OutboundFrame` and
/// `StreamOutput` go through the runtime's generic enum functions, streams' frames included (callgrind: 11 % more
/// instructions per new connection).
struct QueuedDatagram {
    let flow: FlowID
    let payload: [UInt8]
    /// When it was queued, in `MonotonicClock` nanoseconds.
    let queuedAt: UInt64

    /// Whether it has waited too long to be worth sending at `now` (`MonotonicClock` nanoseconds).
    func isStale(at now: UInt64) -> Bool { now > queuedAt && now - queuedAt > Self.longestWait }

    private static let longestWait = UInt64(Limits.maxDatagramWait.nanoseconds)
}
