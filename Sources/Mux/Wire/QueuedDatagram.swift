/// One datagram waiting for the writer, and when it was queued: the writer drops it once it has waited longer
/// than `Limits.maxDatagramWait`.
struct QueuedDatagram {
    let flow: FlowID
    let payload: [UInt8]
    let queuedAt: ContinuousClock.Instant

    /// Whether it has waited too long to be worth sending at `now`.
    func isStale(at now: ContinuousClock.Instant) -> Bool { now - queuedAt > Limits.maxDatagramWait }
}
