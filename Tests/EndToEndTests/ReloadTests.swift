import Crypto
import Foundation
import Testing

@testable import Mux

/// Reloads (SIGHUP) of agent processes as an operator runs them: what each says it changed, what it could not
/// change and kept, what waits for a restart, and the secrets systemd hands over as credentials.
@Suite struct ReloadTests {
    /// A SOCKS5 greeting offering only "no authentication": the method the server picks (0xFF for none of them,
    /// that is, a login is required), or nil if it did not answer.
    private func socksMethod(at port: UInt16) throws -> UInt8? {
        let socket = try connect(to: Endpoint(host: "127.0.0.1", port: port))
        defer { socket.close() }
        try socket.sendAll([5, 1, 0])
        let reply = receive(socket, limit: 2, within: 5).bytes
        return reply.count == 2 ? reply[1] : nil
    }

    private func write(_ text: String, to path: String, mode: Int = 0o600) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    @Test func aReloadSaysWhatItDidKeepsASocksPortItCannotMoveAndAppliesUsersAndLogLevel() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let keyFile = try makeKeyFile()
        let folder = NSTemporaryDirectory() + "tcptunnel-reload-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: folder)
            try? FileManager.default.removeItem(atPath: keyFile)
        }
        let remote = try AgentProcess([
            "remote", "--listen", "127.0.0.1:0", "--target", "\(target.endpoint)", "--key-file", keyFile,
        ])
        let remotePort = try #require(remote.listeningPort())
        let (listen, socks, taken, metrics) = (
            try freeLoopbackPort(), try freeLoopbackPort(), try freeLoopbackPort(), try freeLoopbackPort()
        )
        let occupant = try Listener(endpoint: Endpoint(host: "127.0.0.1", port: taken))  // the port in use
        defer { occupant.stop() }
        try write("alice:wonderland\n", to: "\(folder)/users")
        let config = "\(folder)/local.toml"
        let common = """
            remote = "127.0.0.1:\(remotePort)"
            key-file = "\(keyFile)"
            listen = ["127.0.0.1:\(listen)"]
            metrics = "127.0.0.1:\(metrics)"

            """
        try write(common + "socks = [\"127.0.0.1:\(socks)\"]\n", to: config)
        let local = try AgentProcess(["local", "--config", config])
        #expect(local.waitForLog("link up"))
        #expect(try socksMethod(at: socks) == 0, "no login yet")

        // The SOCKS port moves to one in use, users and debug logging arrive, and an option needs a restart.
        try write(
            common
                + "socks = [\"127.0.0.1:\(taken)\"]\nsocks-user-file = \"users\"\nlog-level = \"debug\"\nkeepalive = 20\n",
            to: config)
        local.send(SIGHUP)
        #expect(local.waitForLog("reloaded: "))
        #expect(local.waitForLog("reload: --keepalive changed, which takes effect when the agent restarts"))
        let log = local.standardError
        #expect(log.contains("SOCKS login required: 1 user"))
        #expect(log.contains("log level now debug"))
        #expect(log.contains("error") && log.contains("reload: could not start SOCKS5 on 127.0.0.1:\(taken) (-D)"))
        #expect(log.contains("reload: kept SOCKS5 on 127.0.0.1:\(socks) (-D)"))
        #expect(try socksMethod(at: socks) == 0xFF, "the kept port now asks for a login")
        #expect(try echoesExactly(Array("debug".utf8), through: Endpoint(host: "127.0.0.1", port: listen)))
        #expect(local.waitForLog(" opened to "), "a stream's debug line, now that the level is debug")
        let scrape = try run("/usr/bin/curl", ["-sf", "http://127.0.0.1:\(metrics)/metrics"])
        let exposition = String(decoding: scrape.output, as: UTF8.self)
        #expect(exposition.contains("tcptunnel_config_last_reload_successful 0"), "a port could not be had")
        #expect(exposition.contains(#"tcptunnel_config_reloads_total{result="failed"} 1"#))

        // Back to the free port, without users: both said, and the old port closes.
        try write(common + "socks = [\"127.0.0.1:\(socks)\"]\n", to: config)
        local.send(SIGHUP)
        #expect(local.waitForLog("SOCKS login no longer required"))
        #expect(try socksMethod(at: socks) == 0)
        #expect(local.count(of: "link up") == 1, "no reload touched the link")
    }

    @Test func aReverseForwardTheRemoteAgentRefusedComesBackWhenAReloadAllowsItWithoutAReconnect() throws {
        let service = try TestTarget.echo()
        defer { service.stop() }
        let keyFile = try makeKeyFile()
        let config = NSTemporaryDirectory() + "tcptunnel-remote-\(UUID().uuidString).toml"
        defer { for path in [keyFile, config] { try? FileManager.default.removeItem(atPath: path) } }
        let port = try freeLoopbackPort()
        let base = "listen = \"127.0.0.1:0\"\ntarget = \"\(service.endpoint)\"\nkey-file = \"\(keyFile)\"\n"
        try write(base, to: config)
        let remote = try AgentProcess(["remote", "--config", config])
        let remotePort = try #require(remote.listeningPort())
        let local = try AgentProcess([
            "local", "--remote", "127.0.0.1:\(remotePort)", "--key-file", keyFile, "-R", "\(port):\(service.endpoint)",
        ])
        #expect(local.waitForLog("reverse forward refused"))

        try write(base + "allow-listen = [\"\(port)\"]\n", to: config)
        remote.send(SIGHUP)
        #expect(remote.waitForLog("is now allowed"))
        #expect(local.waitForLog("reverse forward up", seconds: 3), "told at once, not at a retry or reconnect")
        #expect(try echoesExactly(pattern(count: 1 << 16, seed: 5), through: Endpoint(host: "127.0.0.1", port: port)))
        #expect(local.count(of: "link up") == 1)
    }

    @Test func socksUsersAndTheKeyComeFromSystemdCredentialsAndCheckNamesThem() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let credentials = NSTemporaryDirectory() + "tcptunnel-credentials-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: credentials, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: credentials) }
        // As systemd's LoadCredential= leaves them: read-only files of the service's user.
        try write(PreSharedKey.generateBase64(), to: "\(credentials)/key", mode: 0o400)
        try write("alice:wonderland\nbob:builder\n", to: "\(credentials)/socks-users", mode: 0o400)
        let environment = ["CREDENTIALS_DIRECTORY": credentials]
        let socks = try freeLoopbackPort()
        let arguments = ["local", "--remote", "127.0.0.1:9", "-D", "\(socks)"]

        let report = try run(AgentProcess.binary.path, arguments + ["--check"], environment: environment)
        #expect(report.status == 0, "\(report.errors)")
        let text = String(decoding: report.output, as: UTF8.self)
        #expect(text.contains("# key from systemd credential key ($CREDENTIALS_DIRECTORY), fingerprint "), "\(text)")
        #expect(text.contains("# SOCKS users from systemd credential socks-users ($CREDENTIALS_DIRECTORY), 2 users"))

        let local = try AgentProcess(arguments, environment: environment)
        #expect(local.waitForLog("as a SOCKS5 server (-D), username/password required"))
        #expect(try socksMethod(at: socks) == 0xFF)
    }
}
