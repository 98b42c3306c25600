import FoundationEssentials
import Glibc
import Mux

/// A program the benchmark runs (an agent, a peer tunnel, the echo target), with its output in a log
/// file of the run's scratch directory. Stopped by pid: SIGTERM, then SIGKILL after five seconds.
///
/// posix_spawn and waitpid directly: the benchmark must know for certain when a child has exited, and
/// it reaps its own children. Only the thread that runs the benchmark calls these methods.
final class ChildProcess: @unchecked Sendable {  // `exitStatus` is only touched by the benchmark's thread
    let name: String
    let log: URL
    let pid: pid_t
    private var exitStatus: Int32?

    /// Starts `executable` (a path, or a name looked up in PATH, /usr/sbin and /sbin) with `arguments`, in
    /// the network namespace of the calling thread or, if one is named, in `namespace` (through
    /// `ip netns exec`, which execs the program: `pid` is still the program's).
    init(_ name: String, executable: String, arguments: [String], scratch: URL, namespace: String? = nil)
        throws(BenchError)
    {
        self.name = name
        var path = try Self.locate(executable)
        var arguments = arguments
        if let namespace {
            arguments = ["netns", "exec", namespace, path] + arguments
            path = try Self.locate("ip")
        }
        log = scratch.appendingPathComponent("\(name.replacing(" ", with: "-")).log")
        let output = open(log.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw BenchError("cannot create \(log.path): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        posix_spawn_file_actions_adddup2(&actions, output, 2)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, path, &actions, nil, argv, environ)
        guard status == 0 else {
            throw BenchError("cannot start \(name) (\(path)): \(String(cString: strerror(status)))")
        }
        pid = child
        Self.running.withLock { _ = $0.insert(child) }
    }

    /// Children started and not yet seen to exit, for `terminateAll()`.
    private static let running = Locked(Set<pid_t>())

    /// Stops every child still running (SIGTERM, then SIGKILL after two seconds): for an interrupted run,
    /// so that no agent, peer or target outlives the benchmark. Callable from any thread.
    static func terminateAll() {
        let pids = running.withLock { $0 }
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = ContinuousClock.now + .seconds(2)
        var left = pids
        while !left.isEmpty, ContinuousClock.now < deadline {
            left = left.filter {
                var status: Int32 = 0
                return waitpid($0, &status, WNOHANG) == 0
            }
            sleep(seconds: 0.02)
        }
        for pid in left { kill(pid, SIGKILL) }
    }

    /// Whether the process is still running (reaping it if it has exited).
    var isRunning: Bool {
        guard exitStatus == nil else { return false }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return true }
        exitStatus = status
        Self.running.withLock { _ = $0.remove(pid) }
        return false
    }

    /// The last lines of its log, for an error message.
    var logTail: String { lastLogLines.joined(separator: " | ") }

    /// The last five lines of its log.
    var lastLogLines: [Substring] {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return Array(text.split(separator: "\n").suffix(5))
    }

    /// Waits up to `seconds` for the process to exit by itself; returns whether it did, with status 0.
    @discardableResult
    func waitUntilExit(seconds: Double = 10) -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while isRunning, ContinuousClock.now < deadline { sleep(seconds: 0.01) }
        return exitStatus == 0
    }

    /// Stops the process and waits for it to exit.
    func stop() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        if !waitUntilExit(seconds: 5), isRunning {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
            exitStatus = status
            Self.running.withLock { _ = $0.remove(pid) }
        }
    }

    /// The full path of `program`, or an error naming it.
    static func locate(_ program: String) throws(BenchError) -> String {
        if program.contains("/") { return program }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"] {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw BenchError("\(program) is not installed")
    }

    /// The running binary's own path, to start agents and the echo target of the same build.
    static var ownExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
