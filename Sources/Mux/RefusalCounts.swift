/// How many streams an agent refused, or had refused by its peer, for each reason since it started.
final class RefusalCounts: Sendable {
    private let counts = Locked<[ResetReason: Int]>([:])

    /// Counts one refusal for `reason`.
    func record(_ reason: ResetReason) {
        counts.withLock { $0[reason, default: 0] += 1 }
    }

    /// Refusals for `reason` so far.
    subscript(reason: ResetReason) -> Int {
        counts.withLock { $0[reason, default: 0] }
    }
}
