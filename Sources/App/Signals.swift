import CLinux
import CrashExit
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

    /// Ignores SIGPIPE (sockets report EPIPE instead), makes every crash end the process at once with its own
    /// signal (`CrashExit`), and blocks exactly the signals `waitForRequest()` handles in this thread and in every
    /// thread started after it, so that only that call receives them. Call before starting threads.
    static func prepare() {
        signal(SIGPIPE, SIG_IGN)
        _ = crash_exit_install(crashReportDeadlineMilliseconds)
        // SETMASK, not BLOCK: a mask inherited from the parent (Foundation's Process blocks most signals in its
        // children) would leave a crash signal sent with kill pending for ever.
        var set = handledSignals
        pthread_sigmask(SIG_SETMASK, &set, nil)
        _ = requests
    }

    /// How long Swift's crash report may take before the process ends anyway: a dead agent must free its ports
    /// for the service manager's restart within 2 s.
    private static let crashReportDeadlineMilliseconds: UInt32 = 1_500

    /// Blocks until SIGINT, SIGTERM, SIGHUP or SIGUSR1 arrives.
    ///
    /// Reads a signalfd rather than calling `sigwait`: while a thread sleeps in `sigwait` the kernel unblocks the
    /// awaited signals for it, so Swift's crash handler, which pauses each thread with the first of SIGUSR1,
    /// SIGUSR2 and SIGPROF that thread does not block, would send SIGUSR1 here and see it taken as "log metrics"
    /// (16 tries, 2 s apart) instead of pausing the thread. A signalfd leaves the mask as it is.
    static func waitForRequest() -> Request {
        switch receiveHandledSignal() {
        case SIGUSR1: return .logMetrics
        case SIGHUP: return .reload
        case SIGINT: return .stop("SIGINT")
        default: return .stop("SIGTERM")
        }
    }

    /// The descriptor the handled signals are read from, opened by `prepare()` while descriptors are plenty.
    private static let requests: Int32 = {
        var set = handledSignals
        let descriptor = signalfd(-1, &set, Int32(SFD_CLOEXEC))
        precondition(descriptor >= 0, "signalfd: \(String(cString: strerror(errno)))")
        return descriptor
    }()

    private static func receiveHandledSignal() -> Int32 {
        var info = signalfd_siginfo()
        while true {
            let count = withUnsafeMutableBytes(of: &info) { Glibc.read(requests, $0.baseAddress, $0.count) }
            if count == MemoryLayout<signalfd_siginfo>.size { return Int32(info.ssi_signo) }
            precondition(count < 0 && errno == EINTR, "signalfd read: \(String(cString: strerror(errno)))")
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
