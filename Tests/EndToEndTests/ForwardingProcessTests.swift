import Foundation
import Testing

@testable import Mux

/// Forwarding as a user meets it: agent processes killed and restarted, and a real SOCKS client (curl).
@Suite struct ForwardingProcessTests {
    @Test func reversePortIsReleasedWhenTheLocalAgentIsKilledAndBoundAgainWhenItComesBack() throws {
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

        local.send(SIGKILL)
        #expect(local.waitForExit() != nil)
        #expect(remote.waitForLog("stopped listening on \(entry)"))
        #expect(throws: SocketError.self) { try connect(to: entry) }

        let restarted = try AgentProcess(localArguments)
        #expect(restarted.waitForLog("reverse forward up"))
        #expect(try echoesExactly(pattern(count: 1 << 20, seed: 8), through: entry))
    }

    @Test(
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "curl is not installed"),
        arguments: ["--socks5-hostname", "--socks5"])
    func curlDownloadsThroughTheSocksListenerByteExact(option: String) throws {
        let body = pattern(count: 3 << 20, seed: 9)
        let server = try TestTarget { socket in
            var request: [UInt8] = []
            while !request.ends(with: Array("\r\n\r\n".utf8)) {
                let chunk = readToEnd(socket, limit: 1)
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
