import DequeModule

/// Threads that outlive the job they were started for: when a job ends, its thread parks for a while and takes
/// the next job handed to the pool instead of exiting, so a new stream does not wait for a thread to be created
/// (and the kernel does not tear one down per stream). Still one thread per job at a time: a job is never queued
/// behind another; with no thread parked, `run` starts a new one.
///
/// At most `maxParked` threads park at once, and each exits after `idleTimeout` without a job, so an agent that
/// served a burst gives its threads back.
///
/// `@unchecked Sendable`: `parked` and `handedOver` are guarded by `condition`.
package final class WorkerPool: @unchecked Sendable {
    /// The pool every agent's stream threads come from.
    package static let shared = WorkerPool(maxParked: Limits.maxParkedThreads, idleTimeout: Limits.parkedThreadTimeout)

    private let maxParked: Int
    private let idleTimeout: Duration
    private let condition = MonotonicCondition()
    /// Threads parked and not yet promised a job.
    private var parked = 0
    /// Jobs handed to parked threads and not yet taken; never more than the threads that will take them.
    private var handedOver = Deque<(name: String, body: @Sendable () -> Void)>()

    /// A pool that parks up to `maxParked` finished threads for up to `idleTimeout` each.
    package init(maxParked: Int, idleTimeout: Duration) {
        self.maxParked = maxParked
        self.idleTimeout = idleTimeout
    }

    /// Runs `body` on a thread of its own, named `name`: a parked one if there is one, else a new one. Throws
    /// only when a new thread is needed and none can be started.
    package func run(named name: String, _ body: @escaping @Sendable () -> Void) throws(ThreadError) {
        condition.lock()
        if parked > 0 {
            parked -= 1
            handedOver.append((name, body))
            condition.signal()  // any parked thread can take it
            condition.unlock()
            return
        }
        condition.unlock()
        try startThread(named: name) { [self] in
            body()
            while let (name, next) = nextJob() {
                nameCurrentThread(name)
                next()
            }
        }
    }

    /// Threads parked now, waiting for a job.
    package var parkedCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return parked
    }

    /// Parks the calling thread until a job is handed over or `idleTimeout` passes; nil means the thread should
    /// end (the pool is full of parked threads, or no job came).
    private func nextJob() -> (String, @Sendable () -> Void)? {
        condition.lock()
        defer { condition.unlock() }
        guard parked < maxParked else { return nil }
        parked += 1
        let deadline = ContinuousClock.now + idleTimeout
        while handedOver.isEmpty {
            if !condition.wait(until: deadline) && handedOver.isEmpty {
                parked -= 1
                return nil
            }
        }
        return handedOver.removeFirst()
    }
}
