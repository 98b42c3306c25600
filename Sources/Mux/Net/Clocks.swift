import Glibc

/// The wall clock as the handshake's timestamps use it: Unix time in milliseconds.
package enum UnixClock {
    /// Now, in Unix milliseconds (`CLOCK_REALTIME`); deadlines use the monotonic clock instead.
    package static func nowMillis() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(max(0, now.tv_sec)) * 1000 + UInt64(now.tv_nsec / 1_000_000)
    }
}

/// The monotonic clock (`CLOCK_MONOTONIC`): cheap enough to read per event, immune to clock steps. Every
/// deadline and timed wait runs on it (or on `ContinuousClock`, which never steps either).
enum MonotonicClock {
    /// Now, in nanoseconds since an arbitrary start.
    static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Sets up `condition` so that `pthread_cond_timedwait` reads its deadlines on this clock.
    static func initialise(_ condition: UnsafeMutablePointer<pthread_cond_t>) {
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    /// The absolute time `duration` from now on this clock, for `pthread_cond_timedwait` on a condition set up
    /// by `initialise`.
    static func deadline(after duration: Duration) -> timespec {
        let total = nanoseconds() + UInt64(max(0, duration.nanoseconds))
        return timespec(tv_sec: Int(total / 1_000_000_000), tv_nsec: Int(total % 1_000_000_000))
    }
}
