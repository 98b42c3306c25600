import Foundation
import Testing

@testable import Mux

/// A real OpenSSH session (Debian's sshd and ssh) through the tunnel while its link's connection is killed: what a
/// user of `ssh -L` loses at the first reset, a session through tcptunnel keeps.
// Serialized: each case holds a test thread for 30 s, and two at once would hold every thread of a 2-core machine.
@Suite(.serialized, .coverSite, .timeLimit(.minutes(3)))
struct OpenSSHTests {
    /// The counter the remote shell prints: one line every 0.1 s for 30 s.
    static let lines = 300

    @Test(arguments: CensorTests.Transport.allCases)
    func aSessionPrintingACounterFor30SecondsKeepsItsExactOutputAcrossThreeKilledConnections(
        transport: CensorTests.Transport
    ) throws {
        let server = try SSHServer()
        defer { server.stop() }
        let tunnel = try ResumptionTests.Tunnel(transport, target: server.endpoint)
        let output = NSTemporaryDirectory() + "tcptunnel-ssh-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let session = try SpawnedProcess(
            "/usr/bin/ssh",
            [
                "-p", "\(tunnel.client.port)", "-i", server.clientKey, "-o", "BatchMode=yes", "-o",
                "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "root@127.0.0.1", "for i in $(seq 1 \(Self.lines)); do echo $i; sleep 0.1; done",
            ], output: output)
        defer { session.stop() }
        for _ in 1...3 {
            Thread.sleep(forTimeInterval: 7)
            let before = tunnel.localMetrics.resumptionCount
            // At least the link's connection; on a loaded machine a move to a fresh one (a stall) may be under way
            // too, and losing both at once must be survived as well.
            #expect(killConnections(toPort: tunnel.remote.listeningEndpoint.port) >= 1)
            #expect(eventually(within: 10) { tunnel.localMetrics.resumptionCount > before })
        }
        #expect(eventually(within: 60) { !session.isRunning }, "the session ends when its counter does")
        let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        let expected = (1...Self.lines).map { "\($0)\n" }.joined()
        #expect(printed == expected, "\(printed.suffix(200))")
        print(
            "measured: \(transport), OpenSSH session across 3 killed connections: \(printed.split(separator: "\n").count) of \(Self.lines) lines, exact: \(printed == expected)"
        )
    }
}

/// Debian's sshd on a loopback port of its own, with a host key and one authorized client key made for it,
/// run in the foreground as a child of the test.
final class SSHServer: Sendable {
    let endpoint: Endpoint
    /// The private key a client logs in with (as root).
    let clientKey: String
    private let directory: String
    private let process: SpawnedProcess

    init() throws {
        try DebianPackages.ensureInstalled("openssh-server", providing: "/usr/sbin/sshd")
        try DebianPackages.ensureInstalled("openssh-client", providing: "/usr/bin/ssh")
        directory = NSTemporaryDirectory() + "tcptunnel-sshd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // sshd refuses to start without its privilege separation directory, which only its service creates.
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        clientKey = directory + "/client"
        for key in [directory + "/host", clientKey] {
            let made = try run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key])
            guard made.status == 0 else { throw MissingComponent("ssh-keygen failed: \(made.errors)") }
        }
        try FileManager.default.copyItem(atPath: clientKey + ".pub", toPath: directory + "/authorized_keys")
        let port = try freeLoopbackPort()
        endpoint = Endpoint(host: "127.0.0.1", port: port)
        let config = """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(directory)/host
            AuthorizedKeysFile \(directory)/authorized_keys
            PidFile \(directory)/sshd.pid
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            StrictModes no
            UsePAM no
            """
        try config.write(toFile: directory + "/sshd_config", atomically: true, encoding: .utf8)
        process = try SpawnedProcess(
            "/usr/sbin/sshd", ["-D", "-e", "-f", directory + "/sshd_config"], output: directory + "/sshd.log")
        guard eventually(within: 10, { (try? connect(to: self.endpoint)).map { $0.close() } != nil }) else {
            let log = (try? String(contentsOfFile: directory + "/sshd.log", encoding: .utf8)) ?? ""
            process.stop()
            throw MissingComponent("sshd did not listen on \(endpoint): \(log)")
        }
    }

    func stop() {
        process.stop(with: SIGTERM)
        try? FileManager.default.removeItem(atPath: directory)
    }
}
