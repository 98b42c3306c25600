import Foundation
import Testing

@testable import Mux

/// Reverse forwards (-R): the remote agent listens, its clients come back over the link.
@Suite struct ReverseForwardTests {
    @Test func clientsOfTheRemotePortReachAServiceBesideTheLocalAgentByteExact() throws {
        let service = try TestTarget.echo()
        defer { service.stop() }
        let port = try freeLoopbackPort()
        let entry = Endpoint(host: "127.0.0.1", port: port)
        let tunnel = try ForwardingTunnel(
            target: service.endpoint, allowListen: ["\(port)-\(port)"],
            forwards: [.reverse(listen: entry, target: service.endpoint)])
        defer { tunnel.stop() }
        #expect(eventually { tunnel.local.reverseForwardResult(listen: entry) == .bound })
        let exact = Locked(0)
        let allDone = try runConcurrently(4, within: 60) { index in
            if (try? echoesExactly(pattern(count: 1 << 20, seed: UInt64(index)), through: entry)) == true {
                exact.withLock { $0 += 1 }
            }
        }
        #expect(allDone)
        #expect(exact.withLock { $0 } == 4)
    }

    /// Both ports are held, bound and not listening, by the test: no test running beside it can take them, and an
    /// agent that tried to bind one would be told "address in use", not "not allowed".
    @Test func portOutsideTheListenRulesIsRefusedAndNeverBound() throws {
        let service = try TestTarget.echo()
        defer { service.stop() }
        let (allowed, other) = (try HeldLoopbackPort(), try HeldLoopbackPort())
        defer { for held in [allowed, other] { held.release() } }
        let entry = Endpoint(host: "127.0.0.1", port: allowed.port)
        let wide = Endpoint(host: "0.0.0.0", port: allowed.port)
        let outside = Endpoint(host: "127.0.0.1", port: other.port)
        // The rule allows this port on loopback only; asking for it on every interface is refused too.
        let tunnel = try ForwardingTunnel(
            target: service.endpoint, allowListen: ["127.0.0.1:\(allowed.port)"],
            forwards: [
                .reverse(listen: outside, target: service.endpoint), .reverse(listen: wide, target: service.endpoint),
            ])
        defer { tunnel.stop() }
        #expect(eventually { tunnel.local.reverseForwardResult(listen: wide) == .notAllowed })
        #expect(tunnel.local.reverseForwardResult(listen: outside) == .notAllowed)
        #expect(tunnel.remote.refusedListenCount == 2)
        #expect(throws: SocketError.self) { try connect(to: entry) }
        #expect(throws: SocketError.self) { try connect(to: outside) }
    }

    @Test func secondLocalAgentAskingForABoundPortIsToldItIsInUseAndGetsItOnceTheFirstLeaves() throws {
        let (first, second) = (
            try TestTarget.echo(banner: Array("first\n".utf8)), try TestTarget.echo(banner: Array("second\n".utf8))
        )
        defer { for target in [first, second] { target.stop() } }
        let port = try freeLoopbackPort()
        let entry = Endpoint(host: "127.0.0.1", port: port)
        let tunnel = try ForwardingTunnel(
            target: first.endpoint, allowListen: ["\(port)"],
            forwards: [.reverse(listen: entry, target: first.endpoint)])
        defer { tunnel.stop() }
        #expect(eventually { tunnel.local.reverseForwardResult(listen: entry) == .bound })
        let rival = try LocalAgent(
            forwards: [.reverse(listen: entry, target: second.endpoint)], remote: tunnel.remote.listeningEndpoint,
            key: tunnel.key, settings: testSettings(), logger: quietLogger)
        try rival.start()
        defer { rival.stop() }
        #expect(eventually { rival.reverseForwardResult(listen: entry) == .addressInUse })
        #expect(banner(at: entry) == "first\n")

        tunnel.local.stop()
        // The rival asks again every retry interval; with both cores busy the port's release and the answer can
        // miss one turn, so two are allowed.
        #expect(
            eventually(within: LocalAgent.listenRetryInterval * 2 + 3) {
                rival.reverseForwardResult(listen: entry) == .bound
            })
        #expect(banner(at: entry) == "second\n")
    }

    @Test func reloadedRulesTakeEffectForNewStreamsAndCloseReversePortsTheyNoLongerCover() throws {
        let service = try TestTarget.echo()
        defer { service.stop() }
        let port = try freeLoopbackPort()
        let entry = Endpoint(host: "127.0.0.1", port: port)
        let tunnel = try ForwardingTunnel(
            target: Endpoint(host: "127.0.0.1", port: try freeLoopbackPort()), allowListen: ["\(port)"],
            forwards: [.socks(listen: loopback), .reverse(listen: entry, target: service.endpoint)])
        defer { tunnel.stop() }
        #expect(eventually { tunnel.local.reverseForwardResult(listen: entry) == .bound })
        let open = try connect(to: entry)  // a stream in flight through the reverse port
        defer { open.close() }
        func socksReply() throws -> UInt8? {
            let (client, _, _) = try SocksClient.connect(to: tunnel.endpoints[0])
            defer { client.socket.close() }
            return try client.connect(address: "127.0.0.1", port: service.endpoint.port)
        }
        #expect(try socksReply() == 2)

        let changes = tunnel.remote.reconfigure(
            allowList: AllowList(
                defaultTarget: Endpoint(host: "127.0.0.1", port: 1), rules: [try AllowRule(parsing: "127.0.0.0/8:*")]),
            listenRules: [])
        #expect(changes.contains("allowed 127.0.0.0/8:*"))
        #expect(try socksReply() == 0)
        #expect(eventually { tunnel.local.reverseForwardResult(listen: entry) == .notAllowed })
        #expect(throws: SocketError.self) { try connect(to: entry) }
        #expect(try echoesExactly(pattern(count: 4096, seed: 9), over: open))
        #expect(tunnel.remote.linkCount == 1)
    }

    /// The first line the service behind `entry` sends.
    private func banner(at entry: Endpoint) -> String? {
        guard let socket = try? connect(to: entry) else { return nil }
        defer { socket.close() }
        var line: [UInt8] = []
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = receive(socket, limit: 1, within: 5).bytes
            if chunk.isEmpty { break }
            line += chunk
        }
        return String(decoding: line, as: UTF8.self)
    }
}
