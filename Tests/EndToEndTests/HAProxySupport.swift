import Foundation
import Testing

@testable import Mux

/// A real HAProxy (Debian's `haproxy` package) run in the foreground on loopback with the sections of
/// `examples/haproxy.cfg`, its addresses replaced by the test's; killed when this object goes away.
final class HAProxyProcess {
    static let binary = "/usr/sbin/haproxy"
    let process = Process()
    let endpoint: Endpoint
    private let configPath: String

    /// HAProxy balancing `examples/haproxy.cfg`'s way over remote agents on 127.0.0.1 at `agentPorts`.
    init(agentPorts: [UInt16]) throws {
        try DebianPackages.ensureInstalled("haproxy", providing: Self.binary)
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../examples/haproxy.cfg").standardized
        let port = try freeLoopbackPort()
        endpoint = Endpoint(host: "127.0.0.1", port: port)
        var lines = try String(contentsOf: example, encoding: .utf8).split(
            separator: "\n", omittingEmptySubsequences: false
        )
        .map(String.init)
        lines.removeAll { $0.trimmingCharacters(in: .whitespaces).hasPrefix("server ") }
        lines = lines.map {
            $0.trimmingCharacters(in: .whitespaces) == "bind :7000" ? "    bind 127.0.0.1:\(port)" : $0
        }
        lines += agentPorts.enumerated().map { "    server agent\($0.offset + 1) 127.0.0.1:\($0.element)" }
        let global = ["global", "    maxconn 4096", ""]
        configPath = NSTemporaryDirectory() + "tcptunnel-haproxy-\(UUID().uuidString).cfg"
        try ((global + lines).joined(separator: "\n") + "\n").write(
            toFile: configPath, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["-db", "-f", configPath]
        _ = FileManager.default.createFile(atPath: configPath + ".log", contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: configPath + ".log"))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try awaitListening(process, at: endpoint, what: "HAProxy", log: configPath + ".log")
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: configPath)
        try? FileManager.default.removeItem(atPath: configPath + ".log")
    }
}

/// The local ports of established TCP connections to 127.0.0.1:`port` from this host: the connecting ends.
func connectingPorts(toPort port: UInt16) -> Set<UInt16> {
    guard let data = FileHandle(forReadingAtPath: "/proc/net/tcp")?.readDataToEndOfFile() else { return [] }
    return Set(
        String(decoding: data, as: UTF8.self).split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 3, fields[3] == "01",
                let local = fields[1].split(separator: ":").last, let remote = fields[2].split(separator: ":").last,
                UInt16(remote, radix: 16) == port
            else { return nil }
            return UInt16(local, radix: 16)
        })
}

/// Kills (`ss -K`, SOCK_DESTROY) every established TCP connection of this machine to port `port`, as a middlebox
/// that resets a connection would, and returns how many there were. Only the connecting side's sockets are
/// destroyed; the other side learns of it from the RST the kernel sends.
func killConnections(toPort port: UInt16) -> Int {
    guard let result = try? run("/usr/bin/ss", ["-K", "-t", "-n", "state", "established", "dport", "=", ":\(port)"])
    else { return 0 }
    return String(decoding: result.output, as: UTF8.self).split(separator: "\n").filter {
        $0.contains(":\(port)") && !$0.hasPrefix("Recv-Q")
    }.count
}
