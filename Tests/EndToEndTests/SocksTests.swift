import Foundation
import Testing

@testable import Mux

/// The local agent's SOCKS5 listener (-D), against real agents on loopback.
@Suite struct SocksTests {
    /// A tunnel with one SOCKS listener whose remote agent allows `rules`; its default target is a closed port.
    private func socksTunnel(
        allow rules: [String], credentials: SocksCredentials? = nil, settings: TunnelSettings = testSettings()
    ) throws -> ForwardingTunnel {
        try ForwardingTunnel(
            target: Endpoint(host: "127.0.0.1", port: try freeLoopbackPort()), allow: rules,
            forwards: [.socks(listen: loopback)], socksCredentials: credentials, settings: settings)
    }

    @Test func connectByIPv4AddressAndByNameReachTheTargetByteExact() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let port = target.endpoint.port
        let tunnel = try socksTunnel(allow: ["127.0.0.1:\(port)", "localhost:\(port)"])
        defer { tunnel.stop() }
        // The target listens on 127.0.0.1 only: `localhost` works whichever of its addresses comes first.
        let requests: [(String, (SocksClient) throws -> UInt8?)] = [
            ("127.0.0.1", { try $0.connect(address: "127.0.0.1", port: port) }),
            ("localhost", { try $0.connect(name: "localhost", port: port) }),
        ]
        for (name, request) in requests {
            let (client, accepted, _) = try SocksClient.connect(to: tunnel.endpoints[0])
            defer { client.socket.close() }
            #expect(accepted)
            #expect(try request(client) == 0, "CONNECT \(name)")
            #expect(try echoesExactly(pattern(count: 1 << 20, seed: 5), over: client.socket), "through \(name)")
        }
    }

    @Test(.enabled(if: hasIPv6Loopback, "this machine has no IPv6 loopback"))
    func connectByIPv6AddressReachesTheTargetByteExact() throws {
        let target = try TestTarget.echo(on: Endpoint(host: "::1", port: 0))
        defer { target.stop() }
        let tunnel = try socksTunnel(allow: ["\(target.endpoint)"])
        defer { tunnel.stop() }
        let (client, accepted, _) = try SocksClient.connect(to: tunnel.endpoints[0])
        defer { client.socket.close() }
        #expect(accepted)
        #expect(try client.connect(address: "::1", port: target.endpoint.port) == 0)
        #expect(try echoesExactly(pattern(count: 1 << 20, seed: 6), over: client.socket))
    }

    struct Failure: CustomTestStringConvertible, Sendable {
        let name: String
        let rules: [String]
        let code: UInt8
        var testDescription: String { "\(name) → \(code)" }
    }

    static let failures: [Failure] = [
        Failure(name: "not allowed", rules: [], code: 2),
        Failure(name: "network unreachable", rules: ["224.0.0.0/4:*"], code: 3),
        Failure(name: "host unreachable", rules: ["*.invalid:*"], code: 4),
        Failure(name: "connection refused", rules: ["127.0.0.1:*"], code: 5),
        Failure(name: "timed out", rules: ["127.0.0.1:*"], code: 6),
        Failure(name: "command not supported", rules: ["127.0.0.1:*"], code: 7),
        Failure(name: "address type not supported", rules: ["127.0.0.1:*"], code: 8),
    ]

    @Test(arguments: failures)
    func eachFailureIsAnsweredWithItsReplyCodeThenClosed(failure: Failure) throws {
        var settings = testSettings()
        settings.connectTimeout = 0.5
        let tunnel = try socksTunnel(allow: failure.rules, settings: settings)
        defer { tunnel.stop() }
        let blackHole = try BlackHole()
        let (client, accepted, _) = try SocksClient.connect(to: tunnel.endpoints[0])
        defer { client.socket.close() }
        #expect(accepted)
        let reply: UInt8? =
            switch failure.code {
            case 2: try client.connect(name: "example.com", port: 80)
            case 3: try client.connect(address: "224.0.0.1", port: 80)
            case 4: try client.connect(name: "no-such-host.invalid", port: 80)
            case 5: try client.connect(address: "127.0.0.1", port: try freeLoopbackPort())
            case 6: try client.connect(address: "127.0.0.1", port: blackHole.endpoint.port)
            case 7: try client.request(command: 2, address: [1, 127, 0, 0, 1], port: 80)
            default: try client.request(command: 1, address: [9, 1, 2, 3, 4], port: 80)
            }
        #expect(reply == failure.code)
        #expect(client.isClosed())
    }

    @Test func malformedGreetingsAndRequestsAreAnsweredAndClosedAndTheListenerGoesOn() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try socksTunnel(allow: ["\(target.endpoint)"])
        defer { tunnel.stop() }
        let entry = tunnel.endpoints[0]
        // A request refused before all of it was read leaves bytes unread, so the close is a reset (after the
        // answer); one read whole, or silence, ends with a FIN.
        let exchanges: [(send: [UInt8], expect: [UInt8], ending: Ending)] = [
            ([4, 1, 0, 80, 127, 0, 0, 1, 0], [], .reset),  // SOCKS4: no SOCKS5 answer exists, so none
            ([5, 0], [5, 0xff], .endOfStream),  // a greeting that offers no method
            ([5, 1, 2], [5, 0xff], .endOfStream),  // username/password offered, none configured
            // request version 4
            ([5, 1, 0, 4, 1, 0, 1, 127, 0, 0, 1, 0, 80], [5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0], .reset),
            // reserved byte 7
            ([5, 1, 0, 5, 1, 7, 1, 127, 0, 0, 1, 0, 80], [5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0], .reset),
            // the name "a b"
            ([5, 1, 0, 5, 1, 0, 3, 3, 0x61, 0x20, 0x62, 0, 80], [5, 0, 5, 4, 0, 1, 0, 0, 0, 0, 0, 0], .endOfStream),
            // a greeting cut short, then silence: closed after the SOCKS handshake timeout
            ([5, 3, 0], [], .endOfStream),
        ]
        for (index, exchange) in exchanges.enumerated() {
            let socket = try connect(to: entry)
            defer { socket.close() }
            try socket.sendAll(exchange.send)
            let answer = receive(socket, within: 5)
            #expect(answer.bytes == exchange.expect, "exchange \(index): \(answer)")
            #expect(answer.ending == exchange.ending && answer.seconds < 3, "exchange \(index): \(answer)")
        }
        let (client, _, _) = try SocksClient.connect(to: entry)
        defer { client.socket.close() }
        #expect(try client.connect(address: "127.0.0.1", port: target.endpoint.port) == 0)
        #expect(try echoesExactly(pattern(count: 4096, seed: 2), over: client.socket))
    }

    @Test func usernameAndPasswordAreRequiredWhenConfiguredAndCheckedExactly() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let path = NSTemporaryDirectory() + "tcptunnel-socks-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(
            FileManager.default.createFile(
                atPath: path, contents: Data("# users\nalice:s3cret:with:colons\nbob:hunter2\n".utf8),
                attributes: [.posixPermissions: 0o600]))
        let tunnel = try socksTunnel(
            allow: ["\(target.endpoint)"], credentials: try SocksCredentials.load(fromFile: path))
        defer { tunnel.stop() }
        let entry = tunnel.endpoints[0]

        let (good, _, goodLogin) = try SocksClient.connect(to: entry, login: ("alice", "s3cret:with:colons"))
        defer { good.socket.close() }
        #expect(goodLogin == true)
        #expect(try good.connect(address: "127.0.0.1", port: target.endpoint.port) == 0)
        #expect(try echoesExactly(pattern(count: 4096, seed: 4), over: good.socket))

        for login in [("alice", "s3cret"), ("bob", "hunter3"), ("carol", "hunter2")] {
            let (bad, _, badLogin) = try SocksClient.connect(to: entry, login: login)
            defer { bad.socket.close() }
            #expect(badLogin == false, "\(login.0)")
            #expect(bad.isClosed())
        }
        let (anonymous, methodAccepted, _) = try SocksClient.connect(to: entry)
        defer { anonymous.socket.close() }
        #expect(!methodAccepted)
    }

    @Test func userFileReadableByOthersOrMalformedIsRefusedWithItsReason() throws {
        let path = NSTemporaryDirectory() + "tcptunnel-socks-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(
            FileManager.default.createFile(
                atPath: path, contents: Data("alice:pw\n".utf8), attributes: [.posixPermissions: 0o644]))
        #expect(
            throws: SocksCredentialsError(
                path: path, reason: "mode 644 lets group or others read it (run: chmod 600 \(path))")
        ) {
            try SocksCredentials.load(fromFile: path)
        }
        try Data("alice\n".utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        #expect(throws: SocksCredentialsError(path: path, reason: "line 1 is not user:password")) {
            try SocksCredentials.load(fromFile: path)
        }
    }

    @Test func clientsTricklingTheirHandshakeAreClosedAtTheDeadlineAndHoldNoStreamSlot() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        var settings = testSettings()
        settings.maxStreams = 10
        settings.socksHandshakeTimeout = 10
        let tunnel = try ForwardingTunnel(
            target: target.endpoint, forwards: [.tunnel(listen: loopback), .socks(listen: loopback)],
            settings: settings)
        defer { tunnel.stop() }
        let (listen, socks) = (tunnel.endpoints[0], tunnel.endpoints[1])
        #expect(eventually { tunnel.local.isLinkUp })
        // A valid greeting and CONNECT request, one byte every 2 s: 26 s to send it all.
        let slowHandshake: [UInt8] = [5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80]
        let closedAfter = Locked<[Double]>([])
        let tricklers = Completion()
        try startThread(named: "tricklers") {
            _ = try? runConcurrently(30, within: 30) { _ in
                guard let socket = try? connect(to: socks) else { return }
                defer { socket.close() }
                let started = Date()
                for byte in slowHandshake {
                    guard (try? socket.sendAll([byte])) != nil else { break }
                    socket.setReceiveTimeout(seconds: 2)
                    var buffer = [UInt8](repeating: 0, count: 16)
                    let received = Result { try buffer.withUnsafeMutableBytes { try socket.receive(into: $0) } }
                    if case .success(0) = received { break }  // closed by the agent
                    if case .failure(let error as SocketError) = received, !error.isTimeout { break }  // reset
                }
                closedAfter.withLock { $0.append(Date().timeIntervalSince(started)) }
            }
            tricklers.complete()
        }
        Thread.sleep(forTimeInterval: 3)
        #expect(try echoesExactly(pattern(count: 50_000, seed: 9), through: listen), "a --listen client gets through")
        #expect(tricklers.wait(seconds: 25))
        let times = closedAfter.withLock { $0 }
        #expect(times.count == 30)
        #expect(times.allSatisfy { $0 >= 9 && $0 < 20 }, "closed after \(times.sorted()) s")
    }
}
