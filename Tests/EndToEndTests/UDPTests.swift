import Foundation
import Testing

@testable import Mux

/// UDP forwards (`-L …/udp`) between two real agents on loopback: datagrams whole, a flow per client, the
/// remote agent's rules, the idle timeout and the caps.
@Suite struct UDPTests {
    /// A tunnel whose local agent forwards UDP on a port of its own to `target`, which the remote agent allows
    /// for UDP; returned once its link is up (datagrams that come while no link is up are dropped).
    private func tunnel(
        to target: UDPTarget, allow: String? = nil, settings: TunnelSettings = testSettings(),
        remoteSettings: TunnelSettings? = nil
    ) throws -> ForwardingTunnel {
        let tunnel = try ForwardingTunnel(
            target: loopback, allow: [allow ?? "127.0.0.1:\(target.endpoint.port)/udp"],
            forwards: [.localUDP(listen: loopback, target: target.endpoint)], settings: settings,
            remoteSettings: remoteSettings)
        #expect(eventually { tunnel.local.isLinkUp })
        return tunnel
    }

    @Test func eachDatagramArrivesWholeAndAloneUpToTheLargestUDPCarries() throws {
        let target = try UDPTarget()
        defer { target.stop() }
        let tunnel = try tunnel(to: target)
        defer { tunnel.stop() }
        let client = try UDPClient()
        for size in [1, 0, 1_472, 1_473, 9_000, Limits.maxDatagram] {
            let datagram = pattern(count: size, seed: UInt64(size))
            try client.send(datagram, to: tunnel.endpoints[0])
            let echo = client.receive()
            #expect(
                echo == datagram,
                "a datagram of \(size) bytes came back as \(echo.map { "\($0.count) bytes" } ?? "nothing")")
        }
        #expect(tunnel.local.metrics.datagrams.drops(.tooLarge) == 0)
    }

    @Test func eachClientAddressHasAFlowOfItsOwnAndGetsOnlyItsOwnReplies() throws {
        let target = try UDPTarget()
        defer { target.stop() }
        let tunnel = try tunnel(to: target)
        defer { tunnel.stop() }
        let entry = tunnel.endpoints[0]
        let exact = Locked(0)
        let allDone = try runConcurrently(20, within: 60) { index in
            guard let client = try? UDPClient() else { return }
            var received: [[UInt8]] = []
            for round in 0..<50 {
                try? client.send([UInt8(index), UInt8(round)], to: entry)
                if let reply = client.receive() { received.append(reply) }
            }
            if received == (0..<50).map({ [UInt8(index), UInt8($0)] }) { exact.withLock { $0 += 1 } }
        }
        #expect(allDone)
        #expect(exact.withLock { $0 } == 20, "every client got its own 50 replies, in order")
        #expect(target.sources.withLock { $0.count } == 20, "the target saw a socket of its own per client")
        #expect(tunnel.local.flowCount == 20 && tunnel.remote.flowCount == 20)
    }

    @Test func aDatagramThatComesWhileNoLinkIsUpIsDroppedAndCounted() throws {
        let target = try UDPTarget()
        defer { target.stop() }
        let local = try LocalAgent(
            forwards: [.localUDP(listen: loopback, target: target.endpoint)],
            remote: Endpoint(host: "127.0.0.1", port: try freeLoopbackPort()), key: try makeKey(),
            settings: testSettings(), logger: quietLogger)
        try local.start()
        defer { local.stop() }
        try UDPClient().send([1], to: local.listeningEndpoints[0])
        #expect(eventually { local.metrics.datagrams.drops(.noLink) == 1 })
        #expect(local.flowCount == 0)
    }

    @Test func aTargetNoRuleAllowsForUDPIsRefusedAndCountedOnBothAgents() throws {
        let target = try UDPTarget()
        defer { target.stop() }
        let tunnel = try tunnel(to: target, allow: "127.0.0.1:\(try freeLoopbackPort())/udp")
        defer { tunnel.stop() }
        let client = try UDPClient()
        try client.send([1], to: tunnel.endpoints[0])
        #expect(eventually { tunnel.local.metrics.datagrams.refusals(.notAllowed) == 1 })
        #expect(tunnel.remote.metrics.datagrams.refusals(.notAllowed) == 1)
        try client.send([2], to: tunnel.endpoints[0])
        #expect(eventually { tunnel.local.metrics.datagrams.drops(.flowRefused) >= 1 }, "dropped here, not asked again")
        #expect(client.receive(within: 0.3) == nil)
        #expect(tunnel.remote.metrics.datagrams.refusals(.notAllowed) == 1)
        #expect(target.sources.withLock { $0.isEmpty })
    }

    @Test func aRuleForTCPOnlyDoesNotLetUDPThrough() throws {
        let target = try UDPTarget()
        defer { target.stop() }
        let tunnel = try tunnel(to: target, allow: "127.0.0.1:\(target.endpoint.port)/tcp")
        defer { tunnel.stop() }
        try UDPClient().send([1], to: tunnel.endpoints[0])
        #expect(eventually { tunnel.remote.metrics.datagrams.refusals(.notAllowed) == 1 })
        #expect(target.sources.withLock { $0.isEmpty })
    }

    @Test func aFlowIdleForTheTimeoutEndsOnBothAgentsAndTheNextDatagramOpensANewOne() throws {
        let target = try UDPTarget()
        defer { target.stop() }
        var settings = testSettings()
        settings.udpIdleTimeout = 1
        let tunnel = try tunnel(to: target, settings: settings)
        defer { tunnel.stop() }
        let client = try UDPClient()
        try client.send([1], to: tunnel.endpoints[0])
        #expect(client.receive() == [1])
        #expect(tunnel.local.flowCount == 1 && tunnel.remote.flowCount == 1)
        #expect(eventually(within: 4) { tunnel.local.flowCount == 0 && tunnel.remote.flowCount == 0 })
        try client.send([2], to: tunnel.endpoints[0])
        #expect(client.receive() == [2])
        #expect(target.sources.withLock { $0.count } == 2, "a new flow, from a new socket of the remote agent")
    }

    @Test func atTheLocalCapAClientIsRefusedAndCountedWhileEveryFlowAwaitsAnAnswer() throws {
        let sink = try UDPTarget(answers: false)
        defer { sink.stop() }
        var settings = testSettings()
        settings.maxUDPFlows = 3
        settings.maxUDPFlowsPerSource = 2
        let tunnel = try tunnel(to: sink, settings: settings, remoteSettings: testSettings())
        defer { tunnel.stop() }
        let clients = try [UDPClient(), UDPClient(), UDPClient(), UDPClient(host: "127.0.0.2")]
        for client in clients { try client.send([1], to: tunnel.endpoints[0]) }
        #expect(eventually { sink.sources.withLock { $0.count } == 3 })
        #expect(tunnel.local.metrics.datagrams.refusals(.tooManyStreams) == 1, "the third from 127.0.0.1 only")
        #expect(tunnel.local.flowCount == 3)
        #expect(
            sink.sources.withLock { $0 }.count == 3 && tunnel.local.metrics.datagrams.drops(.flowRefused) == 1)
    }

    @Test func atTheRemoteCapTheFlowIsRefusedThereAndTheLocalAgentCountsIt() throws {
        let sink = try UDPTarget(answers: false)
        defer { sink.stop() }
        var remoteSettings = testSettings()
        remoteSettings.maxUDPFlows = 1
        remoteSettings.maxUDPFlowsPerSource = 1
        let key = try makeKey()
        let remote = try RemoteAgent(
            listen: loopback,
            allowList: AllowList(
                defaultTarget: loopback, rules: [try AllowRule(parsing: "127.0.0.1:\(sink.endpoint.port)/udp")]),
            keys: [key], settings: remoteSettings, logger: quietLogger)
        try remote.start()
        defer { remote.stop() }
        let local = try LocalAgent(
            forwards: [.localUDP(listen: loopback, target: sink.endpoint)], remote: remote.listeningEndpoint,
            key: key, settings: testSettings(), logger: quietLogger)
        try local.start()
        defer { local.stop() }
        #expect(eventually { local.isLinkUp })
        for client in try [UDPClient(), UDPClient()] { try client.send([1], to: local.listeningEndpoints[0]) }
        #expect(eventually { local.metrics.datagrams.refusals(.tooManyStreams) == 1 })
        #expect(remote.metrics.datagrams.refusals(.tooManyStreams) == 1)
        #expect(sink.sources.withLock { $0.count } == 1)
    }

    @Test func aReverseUDPForwardCarriesEachClientsDatagramsToTheLocalSideAndBack() throws {
        let target = try UDPTarget()
        defer { target.stop() }
        let port = try freeLoopbackUDPPort()
        let entry = Endpoint(host: "127.0.0.1", port: port)
        let tunnel = try ForwardingTunnel(
            target: loopback, allowListen: ["\(port)/udp"],
            forwards: [.reverseUDP(listen: entry, target: target.endpoint)])
        defer { tunnel.stop() }
        #expect(eventually { tunnel.local.reverseForwardResult(listen: entry) == .bound })
        let clients = try [UDPClient(), UDPClient()]
        for (index, client) in clients.enumerated() {
            for size in [1, 1_500, Limits.maxDatagram] {
                let datagram = pattern(count: size, seed: UInt64(index * 100_000 + size))
                try client.send(datagram, to: entry)
                #expect(client.receive() == datagram)
            }
        }
        #expect(target.sources.withLock { $0.count } == 2, "a socket of the local agent's own per client")
        #expect(tunnel.remote.flowCount == 2 && tunnel.local.flowCount == 2)
    }

    @Test func aListenRuleForTCPOnlyRefusesAReverseUDPForward() throws {
        let target = try UDPTarget()
        defer { target.stop() }
        let port = try freeLoopbackUDPPort()
        let entry = Endpoint(host: "127.0.0.1", port: port)
        let tunnel = try ForwardingTunnel(
            target: loopback, allowListen: ["\(port)/tcp"],
            forwards: [.reverseUDP(listen: entry, target: target.endpoint)])
        defer { tunnel.stop() }
        #expect(eventually { tunnel.local.reverseForwardResult(listen: entry) == .notAllowed })
        #expect(tunnel.remote.refusedListenCount >= 1)
    }

    @Test func aReloadStartsANewUDPForwardAndStopsTheOldOne() throws {
        let target = try UDPTarget()
        defer { target.stop() }
        let tunnel = try tunnel(to: target)
        defer { tunnel.stop() }
        let old = tunnel.endpoints[0]
        let fresh = Endpoint(host: "127.0.0.1", port: try freeLoopbackUDPPort())
        let changes = tunnel.local.reconfigure(
            forwards: [.localUDP(listen: fresh, target: target.endpoint)], socksCredentials: nil
        ).changes
        #expect(
            changes.contains { $0.hasPrefix("started") } && changes.contains { $0.hasPrefix("stopped") }, "\(changes)")
        let client = try UDPClient()
        try client.send([1], to: fresh)
        #expect(client.receive() == [1])
        try client.send([2], to: old)
        #expect(client.receive(within: 0.3) == nil, "the old forward's port takes nothing any more")
        #expect(tunnel.local.listeningEndpoints == [fresh])
    }
}
