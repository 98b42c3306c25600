import Glibc

/// A mutex and one condition variable whose timed waits run on `CLOCK_MONOTONIC`, so that a step of the wall
/// clock (NTP, an operator) neither cuts a deadline short nor stretches it. `NSCondition` waits on
/// `CLOCK_REALTIME`: a clock stepped back an hour would make a one-second wait last an hour.
///
/// Use it like `NSCondition`: `lock()`, then `wait()` in a loop that re-checks its condition (wake-ups may be
/// spurious), then `unlock()`. `@unchecked Sendable`: the pthread objects are only touched through their calls.
package final class MonotonicCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    package init() {
        pthread_mutex_init(mutex, nil)
        MonotonicClock.initialise(condition)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    package func lock() { pthread_mutex_lock(mutex) }
    package func unlock() { pthread_mutex_unlock(mutex) }
    /// Wakes every waiter. Call with the lock held.
    package func broadcast() { pthread_cond_broadcast(condition) }
    /// Wakes one waiter, for when any one of them can act on what changed. Call with the lock held.
    func signal() { pthread_cond_signal(condition) }

    /// Waits, with the lock held, until woken.
    package func wait() { pthread_cond_wait(condition, mutex) }

    /// Waits, with the lock held, until woken or `deadline` passes; returns `false` if it passed.
    package func wait(until deadline: ContinuousClock.Instant) -> Bool {
        let remaining = deadline - .now
        guard remaining > .zero else { return false }
        var time = MonotonicClock.deadline(after: remaining)
        return pthread_cond_timedwait(condition, mutex, &time) != ETIMEDOUT
    }
}
