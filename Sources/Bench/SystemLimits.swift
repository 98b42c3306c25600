import Glibc
import Mux

/// The process and kernel limits that decide how many streams one machine can hold in a benchmark.
enum SystemLimits {
    /// Raises this process's descriptor limit (inherited by the route's processes) and checks that
    /// `streams` client sockets, and the threads that route them, fit.
    static func prepare(forStreams streams: Int, holding: Bool) throws(BenchError) {
        var limit = rlimit()
        getrlimit(openFilesResource, &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(openFilesResource, &limit)
        // The load generator keeps one socket per stream (two for the half of a bulk load's sender);
        // each agent and the echo target hold one per stream too.
        let descriptors = streams + 256
        guard Int(limit.rlim_cur) >= descriptors else {
            throw BenchError(
                "\(streams) streams need \(descriptors) open files per process, but the limit is \(limit.rlim_cur) (raise it with ulimit -n)"
            )
        }
        guard holding else { return }
        // Two threads per stream in each agent, one in the echo target, one in the load generator.
        let threads = 6 * streams + 1000
        if let pidMax = readNumber("/proc/sys/kernel/pid_max"), pidMax < threads {
            throw BenchError(
                "holding \(streams) streams needs about \(threads) threads, but kernel.pid_max is \(pidMax) (raise it: sysctl -w kernel.pid_max=\(max(threads, 131072)))"
            )
        }
    }

    private static func readNumber(_ path: String) -> Int? {
        SystemFile.text(path).flatMap { Int($0.trimmed) }
    }

    private static var openFilesResource: __rlimit_resource_t { __rlimit_resource_t(RLIMIT_NOFILE.rawValue) }
}
