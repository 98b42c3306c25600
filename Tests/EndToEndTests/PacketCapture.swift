import Foundation
import Testing

@testable import Mux

/// tshark (Debian's `tshark`) capturing loopback traffic to and from one port, as a DPI box on the path would
/// see it; then read back with tshark's own dissectors.
final class PacketCapture {
    static let binary = "/usr/bin/tshark"
    let file: String
    private let process: SpawnedProcess
    private let log: String

    /// Starts capturing TCP to and from 127.0.0.1:`port` on lo; returns once tshark captures.
    init(port: UInt16) throws {
        try DebianPackages.ensureInstalled("tshark", providing: Self.binary)
        let base = NSTemporaryDirectory() + "tcptunnel-capture-\(UUID().uuidString)"
        file = base + ".pcapng"
        log = base + ".log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        // A 64 MiB kernel buffer: loopback segments are up to 64 KiB, and a bulk transfer fills the default 2 MiB.
        process = try SpawnedProcess(
            Self.binary, ["-i", "lo", "-B", "64", "-f", "tcp port \(port)", "-w", file], output: log)
        let log = self.log
        let file = self.file
        guard
            eventually(
                within: 20,
                {
                    let said = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                    return said.contains("Capturing on") && FileManager.default.fileExists(atPath: file)
                })
        else {
            throw MissingComponent(
                "tshark did not start capturing: \(try String(contentsOfFile: log, encoding: .utf8))")
        }
        // dumpcap says "Capturing on" a moment before its first packet is caught.
        Thread.sleep(forTimeInterval: 1)
    }

    /// Stops capturing and waits for tshark, which completes the file.
    func stop() {
        guard process.isRunning else { return }
        // Give the last packets a moment to be written.
        Thread.sleep(forTimeInterval: 0.5)
        process.stop(with: SIGTERM)
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: file)
        try? FileManager.default.removeItem(atPath: log)
    }

    /// The packets the kernel dropped before tshark could take them, as tshark said when it stopped.
    var droppedPackets: Int {
        let said = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard let line = said.split(separator: "\n").first(where: { $0.contains("dropped") }) else { return 0 }
        return Int(line.prefix { $0.isNumber }) ?? 0
    }

    /// tshark's `-T fields` output for `fields` over the capture (`extra` before them), one array per packet.
    func fields(_ fields: [String], filter: String? = nil, extra: [String] = []) throws -> [[String]] {
        try Self.fields(fields, in: file, filter: filter, extra: extra)
    }

    static func fields(_ fields: [String], in file: String, filter: String? = nil, extra: [String] = []) throws
        -> [[String]]
    {
        try DebianPackages.ensureInstalled("tshark", providing: binary)
        var arguments = ["-r", file, "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"]
        arguments += extra
        if let filter { arguments += ["-Y", filter] }
        arguments += fields.flatMap { ["-e", $0] }
        let result = try run(binary, arguments)
        guard result.status == 0 else { throw MissingComponent("tshark -r failed: \(result.errors)") }
        return String(decoding: result.output, as: UTF8.self).split(separator: "\n").map {
            $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        }
    }

    /// The payload of the first data-carrying segment in each direction of each TCP connection, by (stream
    /// index, whether it goes to `port`).
    func firstSegments(toPort port: UInt16) throws -> [(stream: Int, toPort: Bool, payload: [UInt8])] {
        var seen = Set<String>()
        var firsts: [(stream: Int, toPort: Bool, payload: [UInt8])] = []
        for row in try fields(["tcp.stream", "tcp.dstport", "tcp.payload"], filter: "tcp.len > 0") {
            guard row.count == 3, let stream = Int(row[0]), let destination = UInt16(row[1]) else { continue }
            let key = "\(stream)/\(destination == port)"
            guard !seen.contains(key) else { continue }
            seen.insert(key)
            firsts.append((stream, destination == port, bytes(ofHex: row[2])))
        }
        return firsts
    }
}

/// The bytes of a string of hex digits (colons or not between them).
func bytes(ofHex text: String) -> [UInt8] {
    let digits = Array(text.filter(\.isHexDigit))
    return stride(from: 0, to: digits.count - 1, by: 2).compactMap { UInt8(String(digits[$0...$0 + 1]), radix: 16) }
}

/// A child process started with posix_spawn(2), every signal unblocked and at its default action, standard output
/// and error appended to a file. Foundation's `Process` starts children with most signals blocked (SigBlk
/// fffffffe3bfbea27 here), so tshark would ignore the SIGTERM that asks it to finish its file; and under
/// ThreadSanitizer, Foundation's `Process` crashes when a child it started is killed. Stopped by pid only.
final class SpawnedProcess: @unchecked Sendable {  // `exitStatus` is guarded by `lock`; the rest is immutable
    let pid: pid_t
    private let lock = PosixMutex()
    private var exitStatus: Int32?

    init(_ path: String, _ arguments: [String], output: String) throws {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard status == 0 else { throw MissingComponent("cannot start \(path): \(String(cString: strerror(status)))") }
        self.pid = pid
    }

    /// Whether it has not exited yet (reaping it if it has).
    var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        guard exitStatus == nil else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { exitStatus = status }
        return exitStatus == nil
    }

    /// Sends `signal` and waits for it to exit.
    func stop(with signal: Int32 = SIGKILL) {
        guard isRunning else { return }
        kill(pid, signal)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        lock.lock()
        exitStatus = status
        lock.unlock()
    }
}
