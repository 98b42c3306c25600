/// Caps the streams one agent runs at once, across all its links, and counts the ones it refused; keeps the
/// agent's `streamsActive` gauge.
final class StreamLimiter: Sendable {
    private struct Counts {
        var open = 0
        var refused = 0
    }

    /// The most streams allowed at once.
    let limit: Int
    private let counts = Locked(Counts())
    private let metrics: AgentMetrics

    init(limit: Int, metrics: AgentMetrics) {
        self.limit = limit
        self.metrics = metrics
    }

    /// Takes a slot for a new stream. Returns `false`, and counts a refusal, when all `limit` slots are taken.
    func tryAcquire() -> Bool {
        counts.withLock { counts in
            guard counts.open < limit else {
                counts.refused += 1
                metrics.recordRefusal(.tooManyStreams)
                return false
            }
            counts.open += 1
            metrics.streamsActive.record(counts.open)
            return true
        }
    }

    /// Returns a slot taken by `tryAcquire`.
    func release() {
        counts.withLock { counts in
            counts.open -= 1
            metrics.streamsActive.record(counts.open)
        }
    }

    /// Streams running now.
    var openCount: Int { counts.withLock { $0.open } }

    /// Streams refused since the agent started.
    var refusedCount: Int { counts.withLock { $0.refused } }
}
