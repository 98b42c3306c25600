import Glibc

/// Process-wide signal set-up for the agents.
enum Signals {
    /// What a signal asks of a running agent.
    enum Request: Equatable {
        /// SIGINT or SIGTERM: drain and stop. Carries the signal's name.
        case stop(String)
        /// SIGUSR1: log the metrics as one line.
        case logMetrics
        /// SIGHUP: read the configuration again and apply what changed.
        case reload
    }

    /// Ignores SIGPIPE (sockets report EPIPE instead) and blocks the signals `waitForRequest()` handles in this
    /// thread and in every thread started after it, so that only that call receives them. Call before starting
    /// threads.
    static func prepare() {
        signal(SIGPIPE, SIG_IGN)
        var set = handledSignals
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Blocks until SIGINT, SIGTERM, SIGHUP or SIGUSR1 arrives.
    static func waitForRequest() -> Request {
        var set = handledSignals
        var received: Int32 = 0
        while sigwait(&set, &received) != 0 {}
        switch received {
        case SIGUSR1: return .logMetrics
        case SIGHUP: return .reload
        case SIGINT: return .stop("SIGINT")
        default: return .stop("SIGTERM")
        }
    }

    /// Blocks until SIGINT or SIGTERM arrives; returns its name.
    static func waitForTermination() -> String {
        while true {
            if case .stop(let name) = waitForRequest() { return name }
        }
    }

    private static var handledSignals: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGUSR1)
        sigaddset(&set, SIGHUP)
        return set
    }

    /// Raises the soft open-file limit to the hard limit: every stream costs one descriptor on each agent,
    /// and the common soft default of 1024 would cap a tunnel near 1000 clients.
    static func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
