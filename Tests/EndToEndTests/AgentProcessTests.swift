import Foundation
import Testing

@testable import Mux

/// The real `tcptunnel` binary, as an operator runs it.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct AgentProcessTests {
    private func lines(_ text: String) -> [Substring] {
        text.split(separator: "\n")
    }

    @Test func keygenWritesPrivateKeyFileAndNeverOverwritesIt() throws {
        let path = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let before = try String(contentsOfFile: path, encoding: .utf8)
        #expect(before.count == 45)
        let again = try AgentProcess(["keygen", "--out", path])
        #expect(again.waitForExit() == 1)
        #expect(lines(again.standardError).count == 1)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == before)
    }

    @Test func keyFileReadableByOthersIsRefusedWithOneLine() throws {
        let path = try makeKeyFile(mode: 0o644)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let agent = try AgentProcess(["remote", "--listen", "127.0.0.1:0", "--key-file", path])
        #expect(agent.waitForExit() == 1)
        #expect(
            lines(agent.standardError) == [
                "tcptunnel: error: key file \(path) has mode 644; it must not be "
                    + "readable by group or others (run: chmod 600 \(path))"
            ])
    }

    @Test(arguments: ["--metrics", "--listen", "-L", "-D"])
    func aPortThatCannotBeBoundIsOneLineNamingTheOptionThatAskedForIt(option: String) throws {
        let path = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let held = try HeldLoopbackPort()
        defer { held.release() }
        let value =
            option.hasPrefix("--") ? "127.0.0.1:\(held.port)" : option == "-L" ? "\(held.port):db:5432" : "\(held.port)"
        let others = option == "--metrics" ? ["--listen", "127.0.0.1:0"] : []
        let agent = try AgentProcess(["local", "--remote", "127.0.0.1:9", "--key-file", path, option, value] + others)
        #expect(agent.waitForExit() == 1)
        #expect(
            lines(agent.standardError).last?.hasPrefix(
                "tcptunnel: error: \(option) \(value): cannot listen on 127.0.0.1:\(held.port): bind: ") == true,
            "\(agent.standardError)")
    }

    @Test func fifoGivenAsKeyFileIsOneErrorLineAndAnExitNotAHang() throws {
        let path = NSTemporaryDirectory() + "tcptunnel-fifo-\(UUID().uuidString)"
        #expect(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        for extra in [[], ["--check"]] {
            let agent = try AgentProcess(["remote", "--listen", "127.0.0.1:0", "--key-file", path] + extra)
            #expect(agent.waitForExit(seconds: 5) == 1, "exits at once \(extra)")
            #expect(
                lines(agent.standardError) == [
                    "tcptunnel: error: key file \(path) is a FIFO (named pipe), not a regular file; "
                        + "give the file that holds the key"
                ])
        }
    }

    @Test func checkExitsZeroForAGoodConfigAndKeyAndOneForAKeyOthersCanRead() throws {
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let config = NSTemporaryDirectory() + "tcptunnel-check-\(UUID().uuidString).toml"
        defer { try? FileManager.default.removeItem(atPath: config) }
        try Data("remote = \"127.0.0.1:9\"\nkey-file = [\"\(keyFile)\"]\nforward = [\"8080:db:5432\"]\n".utf8).write(
            to: URL(fileURLWithPath: config))
        let good = try AgentProcess(["local", "--config", config, "--check"])
        #expect(good.waitForExit() == 0)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyFile)
        let lax = try AgentProcess(["local", "--config", config, "--check"])
        #expect(lax.waitForExit() == 1)
        #expect(lax.standardError.contains("must not be readable by group or others"))
    }

    /// The README's promise for config files: exit status 78 and one line naming the file, the line and the key,
    /// for an error between two options, a negative value, and a file that is not UTF-8 alike.
    @Test(arguments: [
        (Array("keepalive = 60\n".utf8), ":3: key 'keepalive': --dead-link-timeout: must be longer than --keepalive"),
        (Array("idle-timeout = -5\n".utf8), ":3: key 'idle-timeout': --idle-timeout: cannot be negative (-5 given)"),
        (Array("# caf".utf8) + [0xE9] + Array("\n".utf8), ":3: not UTF-8 text"),
    ])
    func aBadConfigFileExits78WithOneLineNamingTheFileAndLine(line: [UInt8], expected: String) throws {
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let config = NSTemporaryDirectory() + "tcptunnel-bad-\(UUID().uuidString).toml"
        defer { try? FileManager.default.removeItem(atPath: config) }
        let text = Array("remote = \"127.0.0.1:9\"\nkey-file = [\"\(keyFile)\"]\n".utf8) + line
        try Data(text).write(to: URL(fileURLWithPath: config))
        let agent = try AgentProcess(["local", "--config", config, "--check"])
        #expect(agent.waitForExit() == 78)
        #expect(agent.standardError.hasPrefix("tcptunnel: error: \(config)\(expected)"), "\(agent.standardError)")
        #expect(agent.standardError.split(separator: "\n").count == 1)
    }

    /// JSON logs give a stream's id, target and byte counts as fields, for jq or Loki, not only in the words.
    @Test func jsonLogLinesCarryTheStreamTargetAndBytesAsFields() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let json = ["--log-format", "json", "--log-level", "debug"]
        let remote = try AgentProcess(
            ["remote", "--listen", "127.0.0.1:0", "--target", "\(target.endpoint)", "--key-file", keyFile] + json)
        let remotePort = try #require(remote.listeningPort())
        let local = try AgentProcess(
            ["local", "--remote", "127.0.0.1:\(remotePort)", "--key-file", keyFile, "--listen", "127.0.0.1:0"] + json)
        let port = try #require(local.listeningPort())
        #expect(try echoesExactly(pattern(count: 100_000, seed: 4), through: Endpoint(host: "127.0.0.1", port: port)))
        for agent in [local, remote] {
            #expect(agent.waitForLog(#""message":"stream "#) && agent.waitForLog(" closed: "))
            let closed = agent.standardError.split(separator: "\n").first { $0.contains(" closed: up ") }
            let line = try #require(closed.map { String($0) })
            let fields =
                try #require(
                    try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])["metadata"]
                as? [String: String]
            #expect(fields?["stream"] != nil && fields?["target"] != nil, "\(line)")
            #expect(fields?["bytes_up"] == "100000" && fields?["bytes_down"] == "100000", "\(line)")
        }
    }

    @Test func aKeyOnTheCommandLineIsRefusedNamingWhereKeysComeFrom() throws {
        let agent = try AgentProcess(["local", "--remote", "127.0.0.1:9", "--key", "c2VjcmV0"])
        #expect(agent.waitForExit() == 64)
        #expect(agent.standardError.contains("pass --key-file FILE, or set TCPTUNNEL_KEY"))
        #expect(!agent.standardError.contains("Did you mean"))
    }

    @Test func systemdHearsReadyOnceThePortListensAndStoppingWhenTheAgentDrains() throws {
        let path = NSTemporaryDirectory() + "tcptunnel-notify-\(UUID().uuidString)"
        defer { unlink(path) }
        let receiver = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(receiver) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(receiver, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        try #require(bound == 0)
        Socket(fd: receiver).setReceiveTimeout(seconds: 10)
        func nextMessage() -> String {
            var buffer = [UInt8](repeating: 0, count: 256)
            let count = recv(receiver, &buffer, buffer.count, 0)
            return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : ""
        }

        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let agent = try AgentProcess(
            ["remote", "--listen", "127.0.0.1:0", "--key-file", keyFile], environment: ["NOTIFY_SOCKET": path])
        #expect(nextMessage() == "READY=1")
        let port = try #require(agent.listeningPort())
        let probe = try connect(to: Endpoint(host: "127.0.0.1", port: port))
        probe.close()
        agent.send(SIGTERM)
        #expect(nextMessage() == "STOPPING=1")
        #expect(agent.waitForExit() == 0)
    }

    @Test func missingKeyIsReportedWithOneLine() throws {
        let agent = try AgentProcess(["local", "--remote", "127.0.0.1:9"])
        #expect(agent.waitForExit() == 1)
        #expect(lines(agent.standardError).count == 1)
        #expect(agent.standardError.contains("no key"))
    }

    @Test func malformedKeyInEnvironmentIsReportedWithOneLine() throws {
        let agent = try AgentProcess(["local", "--remote", "127.0.0.1:9"], environment: ["TCPTUNNEL_KEY": "c2hvcnQ="])
        #expect(agent.waitForExit() == 1)
        #expect(lines(agent.standardError).count == 1)
        #expect(agent.standardError.contains("TCPTUNNEL_KEY does not hold a key"))
    }

    @Test func portInUseIsReportedWithOneLineNamingTheOption() throws {
        let path = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let occupied = try Listener(endpoint: loopback)
        defer { occupied.stop() }
        let agent = try AgentProcess(["remote", "--listen", "\(occupied.endpoint)", "--key-file", path])
        #expect(agent.waitForExit() == 1)
        #expect(
            lines(agent.standardError) == [
                "tcptunnel: error: --listen \(occupied.endpoint): cannot listen on \(occupied.endpoint): bind: Address already in use"
            ])
    }

    @Test func unparseableAddressIsAUsageError() throws {
        let agent = try AgentProcess(["local", "--remote", "nowhere"])
        #expect(agent.waitForExit() == 64)
        #expect(agent.standardError.contains("--remote: bad address 'nowhere': expected HOST:PORT"))
    }

    @Test func sigtermStopsAgentCleanlyWithStatusZero() throws {
        let path = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let agent = try AgentProcess(["remote", "127.0.0.1", "0", "--key-file", path])
        #expect(agent.listeningPort() != nil)
        agent.send(SIGTERM)
        #expect(agent.waitForExit() == 0)
        #expect(agent.standardError.contains("received SIGTERM; shutting down"))
    }

    /// Swift's crash handler prints its report and returns, expecting the fault to happen again; a signal sent
    /// with kill does not, and the agent went on running with its port. Its handler also pauses every other
    /// thread, which the signal thread did not allow for 32 s. A crash must free the agent's ports at once.
    @Test(arguments: [SIGSEGV, SIGBUS, SIGILL, SIGABRT])
    func aCrashSignalEndsTheAgentWithinTwoSecondsWithThatSignal(signal: Int32) throws {
        let path = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let agent = try AgentProcess(["remote", "127.0.0.1", "0", "--key-file", path])
        #expect(agent.listeningPort() != nil)
        agent.send(signal)
        _ = agent.waitForExit(seconds: 2)
        let ending = try #require(agent.ending, "still running 2 s after signal \(signal)")
        #expect(ending.signal == signal)
    }

    /// A fault in a worker thread: the report pauses every other thread, the main one included, then the agent ends.
    @Test func aCrashInTheHandshakeThreadEndsTheAgentWithinTwoSecondsWithItsReport() throws {
        let path = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let agent = try AgentProcess(["remote", "127.0.0.1", "0", "--key-file", path])
        #expect(agent.listeningPort() != nil)
        #expect(agent.send(SIGSEGV, toThreadNamed: "handshakes"))
        _ = agent.waitForExit(seconds: 2)
        let ending = try #require(agent.ending, "still running 2 s after the handshake thread's crash")
        #expect(ending.signal == SIGSEGV)
        #expect(agent.standardError.contains("Thread 0 \"tcptunnel\""))  // the main thread paused for the report
    }

    @Test func killedLocalAgentIsReplacedByARestartedOneOnTheSamePort() throws {
        let path = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let target = try TestTarget.echo()
        defer { target.stop() }
        let remote = try AgentProcess([
            "remote", "--listen", "127.0.0.1:0", "--target", "\(target.endpoint)", "--key-file", path,
        ])
        defer { remote.send(SIGTERM) }
        let remotePort = try #require(remote.listeningPort())
        let spare = try Listener(endpoint: loopback)
        let clientPort = spare.endpoint.port
        spare.stop()
        let localArguments = [
            "local", "127.0.0.1", "\(remotePort)", "--listen", "127.0.0.1:\(clientPort)", "--key-file", path,
        ]
        let client = Endpoint(host: "127.0.0.1", port: clientPort)

        let first = try AgentProcess(localArguments)
        #expect(first.waitForLog("link up"))
        let held = try connect(to: client)  // a stream left open when the agent dies
        defer { held.close() }
        expectEchoed(try exchange(pattern(count: 50_000, seed: 1), through: client), pattern(count: 50_000, seed: 1))
        first.send(SIGKILL)
        #expect(first.waitForExit() == SIGKILL)
        // FIN, or RST when the killed agent left bytes unread (a PING, a WINDOW): either way the connection is
        // lost, and the remote agent holds the session in case its local agent continues it.
        #expect(remote.waitForLog("connection lost"))

        let second = try AgentProcess(localArguments)
        defer { second.send(SIGTERM) }
        #expect(second.waitForLog("link up"))
        let data = pattern(count: 500_000, seed: 2)
        expectEchoed(try exchange(data, through: client), data)
    }
}
