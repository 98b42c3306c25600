import Logging

/// Lets a repeated warning through at most once per interval, with the number of repeats it held back, so that
/// a flood (accept failing while out of descriptors, thousands of refused clients) cannot flood the log.
final class LogThrottle: Sendable {
    private struct State {
        var lastLogged: ContinuousClock.Instant?
        var suppressed = 0
    }

    private let interval: Duration
    private let state = Locked(State())

    init(interval: Duration = .seconds(5)) {
        self.interval = interval
    }

    /// Logs `message` now if the interval has passed since the last line, else counts it.
    func log(_ logger: Logger, level: Logger.Level, _ message: @autoclosure () -> String) {
        let now = ContinuousClock.now
        let suppressed: Int? = state.withLock { state in
            if let last = state.lastLogged, now - last < interval {
                state.suppressed += 1
                return nil
            }
            defer {
                state.lastLogged = now
                state.suppressed = 0
            }
            return state.suppressed
        }
        guard let suppressed else { return }
        let repeats = suppressed > 0 ? " (and \(suppressed) more like it since the last such line)" : ""
        logger.log(level: level, "\(message())\(repeats)")
    }
}
