/// The bytes one link may hold received but not yet written to local sockets, shared by its streams.
/// Each stream reserves its window from here and returns it when it ends.
final class ReceiveBudget: Sendable {
    private let available: Locked<Int>

    /// A budget of `bytes`.
    init(bytes: Int) {
        available = Locked(bytes)
    }

    /// Reserves up to `wanted` bytes, but never less than `minimum` even when that overdraws the budget,
    /// so every stream can make progress. Returns the amount reserved.
    func reserve(upTo wanted: Int, atLeast minimum: Int) -> Int {
        available.withLock { available in
            let granted = max(minimum, min(wanted, available))
            available -= granted
            return granted
        }
    }

    /// Gives back bytes reserved earlier.
    func release(_ bytes: Int) {
        available.withLock { $0 += bytes }
    }

    /// Bytes not reserved by any stream (negative when minimum windows overdraw it).
    var remaining: Int { available.withLock { $0 } }
}
