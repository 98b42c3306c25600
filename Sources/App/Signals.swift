import Glibc

/// Process-wide signal set-up for the agents.
enum Signals {
    /// Ignores SIGPIPE (sockets report EPIPE instead) and blocks SIGINT and SIGTERM in this thread and in every
    /// thread started after it, so that only `waitForTermination()` receives them. Call before starting threads.
    static func prepare() {
        signal(SIGPIPE, SIG_IGN)
        var set = terminationSignals
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Blocks until SIGINT or SIGTERM arrives; returns its name.
    static func waitForTermination() -> String {
        var set = terminationSignals
        var received: Int32 = 0
        while sigwait(&set, &received) != 0 {}
        return received == SIGINT ? "SIGINT" : "SIGTERM"
    }

    private static var terminationSignals: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
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
