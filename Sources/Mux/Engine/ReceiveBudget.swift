/// The bytes received but not yet written to local sockets that some streams may hold together: one link's
/// streams, or (as the `agent` budget of each link's) every stream of an agent. Each stream reserves its window
/// and returns it when it ends.
///
/// Locking: a link's budget takes the agent's lock inside its own, and the agent's budget never takes a link's,
/// so the two cannot deadlock.
final class ReceiveBudget: Sendable {
    private let available: Locked<Int>
    /// The agent-wide budget every reservation from this one also comes out of, if any.
    private let agent: ReceiveBudget?

    /// A budget of `bytes`, whose reservations also come out of `agent` when given.
    init(bytes: Int, within agent: ReceiveBudget? = nil) {
        available = Locked(bytes)
        self.agent = agent
    }

    /// Reserves up to `wanted` bytes, as far as this budget and the agent's allow, but never less than `minimum`
    /// even when that overdraws them, so every stream can make progress. Returns the amount reserved.
    func reserve(upTo wanted: Int, atLeast minimum: Int) -> Int {
        available.withLock { available in
            let here = max(minimum, min(wanted, available))
            let granted = agent?.reserve(upTo: here, atLeast: minimum) ?? here
            available -= granted
            return granted
        }
    }

    /// Gives back bytes reserved earlier (to the agent's budget too).
    func release(_ bytes: Int) {
        available.withLock { available in
            available += bytes
            agent?.release(bytes)
        }
    }

    /// Bytes not reserved by any stream (negative when minimum windows overdraw it).
    var remaining: Int { available.withLock { $0 } }
}
