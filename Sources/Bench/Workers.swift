import Glibc
import Mux

/// The load generator's threads: one per simulated client, started together by a `StartGate`.
enum Workers {
    /// Stack of each load thread: they hold no deep call chains, and thousands of them must fit.
    static let stackSize = 128 * 1024

    /// Runs `body(index)` on `count` new threads and returns the results in index order once all returned.
    /// Every load is bounded in time, so this returns; a thread that cannot be started is an error.
    static func run<T: Sendable>(
        _ count: Int, named name: String, _ body: @escaping @Sendable (Int) -> T
    ) throws(BenchError) -> [T] {
        let results = Locked([T?](repeating: nil, count: count))
        // Threads still running, plus one for this loop, so that `finished` completes only after the loop ends.
        let running = Locked(count + 1)
        let finished = Completion()
        let finish: @Sendable (Int) -> Void = { ended in
            let left = running.withLock { count in
                count -= ended
                return count
            }
            if left == 0 { finished.complete() }
        }
        var startFailure: ThreadError?
        for index in 0..<count {
            do {
                try startThread(named: name, stackSize: stackSize) {
                    let result = body(index)
                    results.withLock { $0[index] = result }
                    finish(1)
                }
            } catch {
                startFailure = error
                finish(count - index)  // the threads never started
                break
            }
        }
        finish(1)
        finished.wait()
        if let startFailure { throw BenchError("load generator: \(startFailure)") }
        return results.withLock { $0.map { $0! } }
    }

    /// Runs `count` threads that each connect to `entry`, wait until all have connected (or failed to), then
    /// run `body(index, connection, start)`, closing the connection afterwards; a thread whose connection
    /// failed returns `failed(error, start)`. `start` is the same instant for every thread.
    static func runConnected<T: Sendable>(
        _ count: Int, to entry: Endpoint, named name: String,
        failed: @escaping @Sendable (BenchError, ContinuousClock.Instant) -> T,
        each body: @escaping @Sendable (Int, LoadConnection, ContinuousClock.Instant) -> T
    ) throws(BenchError) -> [T] {
        let gate = StartGate(expected: count)
        return try run(count, named: name) { index in
            let connection = Result { () throws(BenchError) in try LoadConnection.open(to: entry) }
            let start = gate.arriveAndWait()
            switch connection {
            case .failure(let error): return failed(error, start)
            case .success(let connection):
                defer { connection.close() }
                return body(index, connection, start)
            }
        }
    }
}

/// Holds every load thread at the line until all of them are connected (or failed to), so that each
/// load is timed from one instant and no stream starts before the others exist.
final class StartGate: @unchecked Sendable {  // `arrived` and `openedAt` are guarded by `condition`
    private let condition = MonotonicCondition()
    private let expected: Int
    private var arrived = 0
    private var openedAt: ContinuousClock.Instant?

    /// A gate that opens once `expected` threads arrived.
    init(expected: Int) {
        self.expected = expected
    }

    /// Reports this thread ready (or failed) and waits for the gate to open; returns when it opened.
    @discardableResult
    func arriveAndWait() -> ContinuousClock.Instant {
        condition.lock()
        defer { condition.unlock() }
        arrived += 1
        if arrived >= expected, openedAt == nil {
            openedAt = .now
            condition.broadcast()
        }
        while openedAt == nil { condition.wait() }
        return openedAt!
    }
}
