import Foundation
import Testing

@testable import Mux

/// Forwarding as a user meets it: agent processes killed and restarted, and a real SOCKS client (curl).
@Suite struct ForwardingProcessTests {
    @Test func reversePortOfAKilledLocalAgentIsHeldForItsSessionAndHandedToItsRestartedSuccessor() throws {
        let service = try TestTarget.echo()
        defer { service.stop() }
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let port = try freeLoopbackPort()
        let entry = Endpoint(host: "127.0.0.1", port: port)
        let remote = try AgentProcess([
            "remote", "--listen", "127.0.0.1:0", "--allow-listen", "\(port)", "--key-file", keyFile,
        ])
        let remotePort = try #require(remote.listeningPort())
        let localArguments = [
            "local", "--remote", "127.0.0.1:\(remotePort)", "-R", "\(port):\(service.endpoint)", "--key-file", keyFile,
        ]
        let local = try AgentProcess(localArguments)
        #expect(local.waitForLog("reverse forward up"))
        #expect(try echoesExactly(pattern(count: 1 << 20, seed: 7), through: entry))

        // A killed agent looks like a broken connection: the remote agent keeps the session, and its port, for it.
        local.send(SIGKILL)
        #expect(local.waitForExit() != nil)
        #expect(remote.waitForLog("streams wait up to 120 s for it to resume"))
        #expect((try? connect(to: entry)).map { $0.close() } != nil, "the port is still bound for the session")

        // The new agent's new session asks for the port: the waiting session is ended and the port is its at once,
        // not when it asks again (every 5 s).
        let restarted = try AgentProcess(localArguments)
        #expect(remote.waitForLog("whose session waits to resume; ending it"))
        #expect(remote.waitForLog("stopped listening on \(entry)"))
        #expect(restarted.waitForLog("reverse forward up", seconds: 4), "bound on the first LISTEN")
        #expect(try echoesExactly(pattern(count: 1 << 20, seed: 8), through: entry))
    }

    @Test func sighupAddsAndRemovesForwardsWhileTheLinkAndAStreamInFlightGoOn() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let keyFile = try makeKeyFile()
        let config = NSTemporaryDirectory() + "tcptunnel-reload-\(UUID().uuidString).toml"
        defer { for path in [keyFile, config] { try? FileManager.default.removeItem(atPath: path) } }
        let remote = try AgentProcess([
            "remote", "--listen", "127.0.0.1:0", "--target", "\(target.endpoint)", "--key-file", keyFile,
        ])
        let remotePort = try #require(remote.listeningPort())
        let (kept, removed, busy, added) = (
            try freeLoopbackPort(), try freeLoopbackPort(), try freeLoopbackPort(), try freeLoopbackPort()
        )
        func writeConfig(_ ports: [UInt16]) throws {
            let forwards = ports.map { "\"\($0):\(target.endpoint)\"" }.joined(separator: ", ")
            let text = "remote = \"127.0.0.1:\(remotePort)\"\nkey-file = [\"\(keyFile)\"]\nforward = [\(forwards)]\n"
            try Data(text.utf8).write(to: URL(fileURLWithPath: config))
        }
        try writeConfig([kept, removed, busy])
        let local = try AgentProcess(["local", "--config", config])
        #expect(local.waitForLog("link up"))
        let entry = { (port: UInt16) in Endpoint(host: "127.0.0.1", port: port) }

        // A stream in flight on the third forward: half its bytes before the reload, half after.
        let stream = try connect(to: entry(busy))
        defer { stream.close() }
        let data = pattern(count: 2 << 20, seed: 11)
        let echoed = Locked<Received?>(nil)
        let reader = Completion()
        try startThread(named: "reload-reader") {
            echoed.withLock { $0 = receive(stream) }
            reader.complete()
        }
        try stream.sendAll(Array(data[..<(1 << 20)]))

        try writeConfig([kept, busy, added])
        local.send(SIGHUP)
        #expect(local.waitForLog("reloaded:"))
        try stream.sendAll(Array(data[(1 << 20)...]))
        stream.shutdown(.write)
        #expect(reader.wait(seconds: 30))
        expectEchoed(try #require(echoed.withLock { $0 }), data)

        #expect(try echoesExactly(pattern(count: 4096, seed: 12), through: entry(kept)))
        #expect(try echoesExactly(pattern(count: 4096, seed: 13), through: entry(added)))
        #expect(throws: SocketError.self) { try connect(to: entry(removed)) }

        try Data("forward = [\"not a forward\"]\n".utf8).write(to: URL(fileURLWithPath: config))
        local.send(SIGHUP)
        #expect(local.waitForLog("reload failed, keeping the running configuration"))
        #expect(try echoesExactly(pattern(count: 4096, seed: 14), through: entry(added)))

        #expect(local.count(of: "link up") == 1)
        #expect(remote.count(of: "link up from") == 1)
    }

    @Test(
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "curl is not installed"),
        arguments: ["--socks5-hostname", "--socks5"])
    func curlDownloadsThroughTheSocksListenerByteExact(option: String) throws {
        let body = pattern(count: 3 << 20, seed: 9)
        let server = try TestTarget { socket in
            var request: [UInt8] = []
            while !request.ends(with: Array("\r\n\r\n".utf8)) {
                let chunk = receive(socket, limit: 1, within: 10).bytes
                if chunk.isEmpty { return }
                request += chunk
            }
            try? socket.sendAll(Array("HTTP/1.0 200 OK\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        }
        defer { server.stop() }
        let tunnel = try ForwardingTunnel(
            target: Endpoint(host: "127.0.0.1", port: try freeLoopbackPort()),
            allow: ["localhost:\(server.endpoint.port)", "\(server.endpoint)"], forwards: [.socks(listen: loopback)])
        defer { tunnel.stop() }
        let output = NSTemporaryDirectory() + "tcptunnel-curl-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: output) }

        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = [
            "-sS", "--max-time", "20", option, "\(tunnel.endpoints[0])", "-o", output,
            // socks5-hostname sends the name; socks5 resolves it in curl, so give the address curl should send.
            "http://\(option == "--socks5" ? "127.0.0.1" : "localhost"):\(server.endpoint.port)/file",
        ]
        try curl.run()
        curl.waitUntilExit()
        #expect(curl.terminationStatus == 0)
        expectIdentical(try [UInt8](Data(contentsOf: URL(fileURLWithPath: output))), body)
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}
