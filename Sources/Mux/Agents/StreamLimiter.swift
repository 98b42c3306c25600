import CoreMetrics
import Logging

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

    /// Why a client is refused at the limit, for a log line.
    var refusal: String { "\(limit) streams open (--max-streams); \(refusedCount) refused since start" }
}

extension SlotPool {
    /// Runs on an accept thread, so it must not block: takes a slot for `client` and runs `serve` on a thread of
    /// its own, which then holds the slot and owns the client. A client beyond the limit, or for which no
    /// thread can be started, is reset at once (it fails instead of reading an empty reply), and `warnings`
    /// lets a line say why.
    func admit(
        _ client: Socket, thread name: String, logger: Logger, warnings: LogThrottle,
        serve: @escaping @Sendable () -> Void
    ) {
        guard tryAcquire() else {
            warnings.log(logger, level: .warning, "refused client \(client.peerEndpoint): \(refusal)")
            client.setAbortOnClose()
            return client.close()
        }
        do {
            try WorkerPool.shared.run(named: name, serve)
        } catch {
            release()
            warnings.log(logger, level: .error, "refused client \(client.peerEndpoint): \(error)")
            client.setAbortOnClose()
            client.close()
        }
    }
}

extension StreamLimiter: SlotPool {}

/// A count of slots in use with a fixed limit, for clients that cost a thread but are not streams (SOCKS
/// handshakes in progress, metrics scrapes).
package final class SlotCounter: SlotPool {
    private let limit: Int
    private let used = Locked(0)
    /// What the slots are for, as a refusal says it: "SOCKS handshakes in progress".
    private let purpose: String

    package init(limit: Int, purpose: String) {
        self.limit = limit
        self.purpose = purpose
    }

    package func tryAcquire() -> Bool {
        used.withLock { used in
            guard used < limit else { return false }
            used += 1
            return true
        }
    }

    package func release() {
        used.withLock { $0 -= 1 }
    }

    var refusal: String { "\(limit) \(purpose)" }
}
