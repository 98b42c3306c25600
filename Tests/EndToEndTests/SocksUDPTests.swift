import Foundation
import Testing

@testable import Mux

/// SOCKS5 UDP ASSOCIATE (RFC 1928 §7) on a local agent's `-D`, between real agents on loopback.
@Suite struct SocksUDPTests {
    /// A UDP echo target, a tunnel with a SOCKS5 server whose UDP flows may reach it, and a client's association
    /// with it: its control connection and the relay's address.
    private final class Association {
        let target: UDPTarget
        let tunnel: ForwardingTunnel
        let control: SocksClient
        let relay: Endpoint

        init() throws {
            let target = try UDPTarget()
            let tunnel = try ForwardingTunnel(
                target: loopback, allow: ["127.0.0.1:\(target.endpoint.port)/udp"],
                forwards: [.socks(listen: loopback)])
            (self.target, self.tunnel) = (target, tunnel)
            #expect(eventually { tunnel.local.isLinkUp })
            let (control, accepted, _) = try SocksClient.connect(to: tunnel.endpoints[0])
            self.control = control
            relay = try #require(try control.associate(), "UDP ASSOCIATE answered with success")
            #expect(accepted && relay.host == "127.0.0.1" && relay.port != 0)
        }

        func stop() {
            control.socket.close()
            tunnel.stop()
            target.stop()
        }
    }

    /// The SOCKS5 UDP header naming `target`, before `data`.
    private func socksDatagram(to target: Endpoint, _ data: [UInt8], fragment: UInt8 = 0) -> [UInt8] {
        [0, 0, fragment] + Array(SocksDatagram.header(from: target).dropFirst(3)) + data
    }

    @Test func aDatagramThroughTheRelayComesBackWithTheHeaderNamingItsSource() throws {
        let association = try Association()
        defer { association.stop() }
        let client = try UDPClient()
        for size in [0, 100, 9_000] {
            let data = pattern(count: size, seed: UInt64(size))
            try client.send(socksDatagram(to: association.target.endpoint, data), to: association.relay)
            #expect(client.receive() == socksDatagram(to: association.target.endpoint, data))
        }
    }

    @Test func fragmentsAndDatagramsFromAnotherAddressAreDroppedAndCounted() throws {
        let association = try Association()
        defer { association.stop() }
        let (target, relay) = (association.target.endpoint, association.relay)
        try UDPClient().send(socksDatagram(to: target, [1], fragment: 1), to: relay)
        try UDPClient(host: "127.0.0.2").send(socksDatagram(to: target, [2]), to: relay)
        try UDPClient().send([0, 0, 0, 9], to: relay)
        #expect(eventually { association.tunnel.local.metrics.datagrams.drops(.socksRefused) == 3 })
        #expect(association.target.sources.withLock { $0.isEmpty })
    }

    @Test func theAssociationEndsWithItsControlConnection() throws {
        let association = try Association()
        defer { association.stop() }
        let (local, remote) = (association.tunnel.local, association.tunnel.remote)
        let client = try UDPClient()
        try client.send(socksDatagram(to: association.target.endpoint, [7]), to: association.relay)
        #expect(client.receive() != nil)
        #expect(local.flowCount == 1 && local.streamCount == 1, "the association holds a stream slot")
        association.control.socket.shutdown(.both)
        #expect(eventually { local.flowCount == 0 && local.streamCount == 0 })
        #expect(eventually { remote.flowCount == 0 }, "the relay's flows ended on the remote agent too")
        try client.send(socksDatagram(to: association.target.endpoint, [8]), to: association.relay)
        #expect(client.receive(within: 0.3) == nil, "nothing listens on the relay's port any more")
    }

    @Test func aTargetTheRemoteAgentDoesNotAllowForUDPIsRefusedAndCounted() throws {
        let association = try Association()
        defer { association.stop() }
        let elsewhere = Endpoint(host: "127.0.0.1", port: try freeLoopbackUDPPort())
        try UDPClient().send(socksDatagram(to: elsewhere, [1]), to: association.relay)
        #expect(eventually { association.tunnel.local.metrics.datagrams.refusals(.notAllowed) == 1 })
    }
}
