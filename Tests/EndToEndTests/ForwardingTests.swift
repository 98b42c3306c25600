import Foundation
import Testing

@testable import Mux

/// -L, -D and -R together, as a user combines them: one link carries all of them.
@Suite struct ForwardingTests {
    @Test func twoLocalForwardsASocksListenerAndAReverseForwardShareExactlyOneLink() throws {
        let (first, second, beside) = (try TestTarget.echo(), try TestTarget.echo(), try TestTarget.echo())
        defer { for target in [first, second, beside] { target.stop() } }
        let reversePort = try freeLoopbackPort()
        let tunnel = try ForwardingTunnel(
            target: first.endpoint, allow: ["localhost:\(second.endpoint.port)", "127.0.0.1:\(second.endpoint.port)"],
            allowListen: ["\(reversePort)"],
            forwards: [
                .local(listen: loopback, target: first.endpoint),
                .local(listen: loopback, target: Endpoint(host: "localhost", port: second.endpoint.port)),
                .socks(listen: loopback),
                .reverse(listen: Endpoint(host: "127.0.0.1", port: reversePort), target: beside.endpoint),
            ])
        defer { tunnel.stop() }
        let reverseEntry = Endpoint(host: "127.0.0.1", port: reversePort)
        #expect(eventually { tunnel.local.reverseForwardResult(listen: reverseEntry) == .bound })

        let entries = tunnel.endpoints
        let exact = Locked([Bool](repeating: false, count: 8))
        let allDone = try runConcurrently(8, within: 60) { index in
            let data = pattern(count: 1 << 20, seed: UInt64(index))
            let ok: Bool
            switch index % 4 {
            case 0: ok = (try? echoesExactly(data, through: entries[0])) == true
            case 1: ok = (try? echoesExactly(data, through: entries[1])) == true
            case 2:
                guard let (client, accepted, _) = try? SocksClient.connect(to: entries[2]), accepted,
                    (try? client.connect(address: "127.0.0.1", port: second.endpoint.port)) == 0
                else { return }
                defer { client.socket.close() }
                ok = (try? echoesExactly(data, over: client.socket)) == true
            default: ok = (try? echoesExactly(data, through: reverseEntry)) == true
            }
            exact.withLock { $0[index] = ok }
        }
        #expect(allDone)
        #expect(exact.withLock { $0 } == [Bool](repeating: true, count: 8))
        #expect(establishedConnections(toPort: tunnel.remote.listeningEndpoint.port) == 1)
        #expect(tunnel.remote.linkCount == 1)
    }

    @Test func targetThatSpeaksFirstIsHeardThroughLocalSocksAndReverseForwards() throws {
        let banner = Array("220 ready\r\n".utf8)
        let target = try TestTarget.echo(banner: banner)
        defer { target.stop() }
        let reversePort = try freeLoopbackPort()
        let reverseEntry = Endpoint(host: "127.0.0.1", port: reversePort)
        let tunnel = try ForwardingTunnel(
            target: target.endpoint, allowListen: ["\(reversePort)"],
            forwards: [
                .local(listen: loopback, target: target.endpoint), .socks(listen: loopback),
                .reverse(listen: reverseEntry, target: target.endpoint),
            ])
        defer { tunnel.stop() }
        #expect(eventually { tunnel.local.reverseForwardResult(listen: reverseEntry) == .bound })

        for entry in [tunnel.endpoints[0], reverseEntry] {
            let socket = try connect(to: entry)
            defer { socket.close() }
            #expect(read(socket, exactly: banner.count, within: 5) == banner, "through \(entry)")
        }
        let (client, accepted, _) = try SocksClient.connect(to: tunnel.endpoints[1])
        defer { client.socket.close() }
        #expect(accepted)
        #expect(try client.connect(address: "127.0.0.1", port: target.endpoint.port) == 0)
        #expect(client.read(banner.count) == banner)
    }
}

/// What the remote agent's rules let through, seen from a SOCKS client: reply 0 or 2 for each case.
@Suite struct AllowListTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let rules: [String]
        let host: String
        let portOffset: Int
        let allowed: Bool
        /// Whether the echo server is also the remote agent's default target; otherwise that is elsewhere.
        var isDefaultTarget = false
        var testDescription: String { "\(host)+\(portOffset) with \(rules)" }
    }

    /// `P` in a rule stands for the echo server's port; requests go to `host` at P + `portOffset`.
    static let cases: [Case] = [
        Case(rules: ["localhost:P"], host: "localhost", portOffset: 0, allowed: true),
        Case(rules: ["otherhost:P"], host: "localhost", portOffset: 0, allowed: false),
        Case(rules: ["*.localhost:P"], host: "localhost", portOffset: 0, allowed: false),
        Case(rules: ["127.0.0.2:P"], host: "127.0.0.1", portOffset: 0, allowed: false),
        Case(rules: ["127.0.0.0/8:P"], host: "127.0.0.1", portOffset: 0, allowed: true),
        Case(rules: ["10.0.0.0/8:P"], host: "127.0.0.1", portOffset: 0, allowed: false),
        Case(rules: ["127.0.0.1:P-P"], host: "127.0.0.1", portOffset: 0, allowed: true),
        Case(rules: ["127.0.0.1:P-P"], host: "127.0.0.1", portOffset: 1, allowed: false),
        Case(rules: ["localhost:*"], host: "localhost", portOffset: 0, allowed: true),
        // A name that resolves into addresses no rule covers is refused, even though only addresses are ruled.
        Case(rules: ["10.0.0.0/8:*"], host: "localhost", portOffset: 0, allowed: false),
        Case(rules: ["127.0.0.0/8:*"], host: "localhost", portOffset: 0, allowed: true),
        // The default target is allowed by its own rule, but not its neighbours.
        Case(rules: [], host: "127.0.0.1", portOffset: 0, allowed: true, isDefaultTarget: true),
        Case(rules: [], host: "127.0.0.1", portOffset: 1, allowed: false, isDefaultTarget: true),
    ]

    @Test(arguments: cases)
    func remoteAgentAllowsExactlyWhatItsRulesName(rule: Case) throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let port = target.endpoint.port
        let rules = rule.rules.map { $0.replacingOccurrences(of: "P", with: "\(port)") }
        let defaultTarget =
            rule.isDefaultTarget ? target.endpoint : Endpoint(host: "127.0.0.1", port: try freeLoopbackPort())
        let tunnel = try ForwardingTunnel(target: defaultTarget, allow: rules, forwards: [.socks(listen: loopback)])
        defer { tunnel.stop() }
        let (client, _, _) = try SocksClient.connect(to: tunnel.endpoints[0])
        defer { client.socket.close() }
        let reply = try client.connect(name: rule.host, port: UInt16(Int(port) + rule.portOffset))
        #expect(reply == (rule.allowed ? 0 : 2))
        #expect(tunnel.remote.refusedCount(.notAllowed) == (rule.allowed ? 0 : 1))
        #expect(eventually { tunnel.local.refusedCount(.notAllowed) == (rule.allowed ? 0 : 1) })
        if rule.allowed {
            #expect(try echoesExactly(pattern(count: 4096, seed: 1), over: client.socket))
        }
    }

    @Test func refusedLocalForwardClosesOnlyItsClient() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try ForwardingTunnel(
            target: Endpoint(host: "127.0.0.1", port: try freeLoopbackPort()), allow: ["\(target.endpoint)"],
            forwards: [
                .local(listen: loopback, target: target.endpoint),
                .local(listen: loopback, target: Endpoint(host: "127.0.0.2", port: target.endpoint.port)),
            ])
        defer { tunnel.stop() }
        let busy = try connect(to: tunnel.endpoints[0])
        defer { busy.close() }
        let working = Completion()
        let transferred = Locked(false)
        try startThread(named: "busy-client") {
            transferred.withLock { $0 = (try? echoesExactly(pattern(count: 4 << 20, seed: 3), over: busy)) == true }
            working.complete()
        }
        #expect(isReset(at: tunnel.endpoints[1]))
        #expect(working.wait(seconds: 30))
        #expect(transferred.withLock { $0 })
        #expect(tunnel.remote.refusedCount(.notAllowed) == 1)
    }
}
