import CLinux
import Foundation
import Testing

@testable import Mux

/// The `tcptunnel` binary built next to the test bundle, run as a child process with its standard error captured.
/// The process is killed when this object goes away, so no test leaves an agent running.
final class AgentProcess: @unchecked Sendable {  // `process` is only started and signalled
    let process = Process()
    /// Standard error so far. Shared with the reader thread, which must not keep `self` alive.
    private let output = Locked("")
    private let drained = Completion()
    /// Whether `process` is strace(1), with the agent as its child.
    private let isTraced: Bool

    static var binary: URL { Bundle.main.bundleURL.appendingPathComponent("tcptunnel") }

    /// Starts the binary with `arguments`; with `openFileLimit`, under `ulimit -n` of that many descriptors; with
    /// `systemCallTrace`, under strace(1), which writes the calls it names (`-e trace=…`) of every thread to that
    /// file.
    init(
        _ arguments: [String], environment: [String: String] = [:], openFileLimit: Int? = nil,
        systemCallTrace: (calls: String, file: String)? = nil
    ) throws {
        isTraced = systemCallTrace != nil
        if let systemCallTrace {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/strace")
            process.arguments =
                ["-f", "-qq", "-e", "trace=\(systemCallTrace.calls)", "-o", systemCallTrace.file, Self.binary.path]
                + arguments
        } else if let openFileLimit {
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments =
                ["-c", "ulimit -n \(openFileLimit) && exec \"$0\" \"$@\"", Self.binary.path] + arguments
        } else {
            process.executableURL = Self.binary
            process.arguments = arguments
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.environment?["TCPTUNNEL_KEY"] = environment["TCPTUNNEL_KEY"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let reader = errors.fileHandleForReading
        try startThread(named: "agent-stderr") { [output, drained] in
            while true {
                let data = reader.availableData
                if data.isEmpty { break }
                output.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
            drained.complete()
        }
    }

    /// Everything written to standard error so far.
    var standardError: String { output.withLock { $0 } }

    /// How many times `text` appears on standard error so far.
    func count(of text: String) -> Int {
        standardError.components(separatedBy: text).count - 1
    }

    /// Waits up to `seconds` until `text` has appeared `times` times on standard error.
    func waitForLog(_ text: String, times: Int, seconds: Double = 10) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            if count(of: text) >= times { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    /// A number field of /proc/PID/status, such as `Threads` or `VmHWM` (in kB).
    func status(_ field: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("\(field):") })
        else { return nil }
        return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" })[1])
    }

    /// Waits up to `seconds` until every thread of the agent is stopped (SIGSTOP takes effect asynchronously).
    func waitUntilStopped(seconds: Double = 5) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        let tasks = "/proc/\(process.processIdentifier)/task"
        while Date() < deadline {
            let states = ((try? FileManager.default.contentsOfDirectory(atPath: tasks)) ?? []).map { task in
                (try? String(contentsOfFile: "\(tasks)/\(task)/stat", encoding: .utf8))?
                    .split(separator: ")").last?.split(separator: " ").first
            }
            if !states.isEmpty && states.allSatisfy({ $0 == "T" }) { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return false
    }

    /// Open descriptors, from /proc/PID/fd.
    var descriptorCount: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/fd").count) ?? -1
    }

    /// Waits up to `seconds` for a line containing `text` on standard error.
    func waitForLog(_ text: String, seconds: Double = 10) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            if standardError.contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    /// The port from the agent's "listening on 127.0.0.1:PORT" line.
    func listeningPort() -> UInt16? {
        guard waitForLog("listening on 127.0.0.1:"),
            let range = standardError.range(of: "listening on 127.0.0.1:")
        else { return nil }
        return UInt16(standardError[range.upperBound...].prefix { $0.isNumber })
    }

    /// Waits up to `seconds` for the process to exit; returns its status, or nil if it is still running.
    func waitForExit(seconds: Double = 10) -> Int32? {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        guard !process.isRunning else { return nil }
        drained.wait(seconds: 2)
        return process.terminationStatus
    }

    /// Sends `signal` to the agent (only ever to this process, by its pid): under strace, to the child it traces,
    /// since strace itself would only detach.
    func send(_ signal: Int32) {
        kill(agentPID, signal)
    }

    /// Sends `signal` to the agent's thread named `name` alone, as a fault in that thread would raise it.
    /// Returns false if no thread has that name.
    func send(_ signal: Int32, toThreadNamed name: String) -> Bool {
        let pid = agentPID
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        for task in tasks {
            let comm = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8)
            guard comm?.trimmingCharacters(in: .newlines) == name, let tid = Int32(task) else { continue }
            return clinux_tgkill(pid, tid, signal) == 0
        }
        return false
    }

    /// How the process ended: by a signal (and which), or by exit (and its status); nil while it runs.
    var ending: (signal: Int32?, status: Int32?)? {
        guard !process.isRunning else { return nil }
        let status = process.terminationStatus
        return process.terminationReason == .uncaughtSignal ? (status, nil) : (nil, status)
    }

    /// The agent's pid: the child process, or under strace the child that strace started.
    private var agentPID: pid_t {
        let pid = process.processIdentifier
        guard isTraced,
            let children = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8),
            let child = children.split(separator: " ").first.flatMap({ pid_t($0) })
        else { return pid }
        return child
    }

    deinit {
        if process.isRunning {
            if isTraced { kill(agentPID, SIGKILL) }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A new key file with `mode`, removed when the test's scope ends by the caller.
func makeKeyFile(mode: Int = 0o600) throws -> String {
    let path = NSTemporaryDirectory() + "tcptunnel-test-\(UUID().uuidString).key"
    let keygen = try AgentProcess(["keygen", "--out", path])
    #expect(keygen.waitForExit() == 0)
    try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    return path
}

/// A remote and a local agent process on 127.0.0.1 in front of `target`, sharing a fresh key file.
final class ProcessTunnel {
    let keyFile: String
    private(set) var remote: AgentProcess
    let local: AgentProcess
    let remotePort: UInt16
    /// Where clients connect: the local agent.
    let client: Endpoint
    private let target: Endpoint
    private let remoteArguments: [String]

    init(target: Endpoint, remoteArguments: [String] = [], localArguments: [String] = []) throws {
        self.target = target
        self.remoteArguments = remoteArguments
        keyFile = try makeKeyFile()
        remote = try AgentProcess(
            ["remote", "--listen", "127.0.0.1:0", "--target", "\(target)", "--key-file", keyFile] + remoteArguments)
        remotePort = try #require(remote.listeningPort())
        local = try AgentProcess(
            ["local", "--listen", "127.0.0.1:0", "--remote", "127.0.0.1:\(remotePort)", "--key-file", keyFile]
                + localArguments)
        client = Endpoint(host: "127.0.0.1", port: try #require(local.listeningPort()))
        #expect(local.waitForLog("link up"))
    }

    /// Starts a new remote agent on the same port (the old one must have exited).
    func restartRemote() throws {
        remote = try AgentProcess(
            ["remote", "--listen", "127.0.0.1:\(remotePort)", "--target", "\(target)", "--key-file", keyFile]
                + remoteArguments)
        #expect(remote.listeningPort() == remotePort)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: keyFile)
    }
}
