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

/// The monotonic clock in nanoseconds (`CLOCK_MONOTONIC`): cheap enough to read per event, immune to clock steps.
enum MonotonicClock {
    static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
