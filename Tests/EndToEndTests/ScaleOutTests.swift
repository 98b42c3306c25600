import Foundation
import Testing

@testable import Mux

/// `--links` and several `--remote`s, in one process: how new streams spread over links, and what a link's
/// death takes with it.
@Suite(.serialized) struct ScaleOutTests {
    /// Opens a client to `endpoint` and checks one echo through it, leaving it open both ways.
    private func heldClient(to endpoint: Endpoint) throws -> Socket {
        let client = try connect(to: endpoint)
        #expect(try roundTrip(Array("held".utf8), over: client))
        return client
    }

    /// Sends `data` and reads as many bytes back; whether they are the same.
    private func roundTrip(_ data: [UInt8], over client: Socket) throws -> Bool {
        client.setReceiveTimeout(seconds: 5)
        try client.sendAll(data)
        return (try? client.receive(exactly: data.count, before: .now + .seconds(5))) == data
    }

    @Test func newStreamsGoToTheLinkWithTheFewestStreams() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try ForwardingTunnel(target: target.endpoint, forwards: [.tunnel(listen: loopback)], links: 4)
        defer { tunnel.stop() }
        #expect(eventually { tunnel.local.openLinkCount == 4 && tunnel.remote.linkCount == 4 })
        let clients = try (0..<8).map { _ in try heldClient(to: tunnel.endpoints[0]) }
        defer { for client in clients { client.close() } }
        #expect(tunnel.local.links.links.map(\.streamCount) == [2, 2, 2, 2])
    }

    @Test func aLinkThatDiesResetsOnlyItsOwnStreamsAndComesBackOnItsOwn() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try ForwardingTunnel(target: target.endpoint, forwards: [.tunnel(listen: loopback)], links: 2)
        defer { tunnel.stop() }
        #expect(eventually { tunnel.local.openLinkCount == 2 })
        let clients = try (0..<4).map { _ in try heldClient(to: tunnel.endpoints[0]) }
        defer { for client in clients { client.close() } }
        let links = tunnel.local.links.links
        let doomed = links[0]
        doomed.close(.closedByPeer)
        // Each link carried two of the four clients, in turn: 0 and 2 on one, 1 and 3 on the other.
        let onDoomed = clients.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        let onSurvivor = clients.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        for client in onDoomed {
            let ended = receive(client, within: 10)
            #expect(ended.bytes.isEmpty && ended.ending == .reset, "a stream of the closed link: \(ended)")
        }
        for client in onSurvivor { #expect(try roundTrip(pattern(count: 100_000, seed: 1), over: client)) }
        #expect(try echoesExactly(Array("new".utf8), through: tunnel.endpoints[0]))
        #expect(eventually(within: 10) { tunnel.local.openLinkCount == 2 }, "the dead link reconnects")
        #expect(!tunnel.local.links.links.contains { $0 === doomed })
    }

    @Test func newStreamsGoOnOverTheOtherRemoteAgentWhenOneStops() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let key = try makeKey()
        let remotes = try (0..<2).map { _ in
            try RemoteAgent(
                listen: loopback, target: target.endpoint, keys: [key], settings: testSettings(), logger: quietLogger)
        }
        for remote in remotes { try remote.start() }
        defer { for remote in remotes { remote.stop() } }
        let local = try LocalAgent(
            forwards: [.tunnel(listen: loopback)], remotes: remotes.map(\.listeningEndpoint), linksPerRemote: 2,
            key: key, settings: testSettings(), logger: quietLogger)
        try local.start()
        defer { local.stop() }
        #expect(eventually { local.openLinkCount == 4 && remotes.allSatisfy { $0.linkCount == 2 } })
        remotes[0].stop()
        #expect(eventually { local.openLinkCount == 2 })
        for round in 0..<6 {
            #expect(try echoesExactly(Array("after \(round)".utf8), through: local.listeningEndpoints[0]))
        }
        // The client has its echo and end of stream before the remote agent's relay thread frees the stream's
        // slot, so the count reaches zero a moment later.
        #expect(eventually { remotes[1].streamCount == 0 }, "every stream over the survivor ended")
        #expect(remotes[1].linkCount == 2)
    }

    @Test func reverseForwardsAreAskedOnceOnEachRemoteAgentAndMoveToAnotherLinkWhenTheirsDies() throws {
        let service = try TestTarget.echo()
        defer { service.stop() }
        let port = try freeLoopbackPort()
        let entry = Endpoint(host: "127.0.0.1", port: port)
        let tunnel = try ForwardingTunnel(
            target: service.endpoint, allowListen: ["\(port)"],
            forwards: [.reverse(listen: entry, target: service.endpoint)],
            links: 3)
        defer { tunnel.stop() }
        #expect(
            eventually { tunnel.local.openLinkCount == 3 && tunnel.local.reverseForwardResult(listen: entry) == .bound }
        )
        #expect(tunnel.local.reverseForwardResults(forward: 1) == [.bound], "one link asks, and it was bound")
        #expect(tunnel.remote.refusedListenCount == 0, "no other link asked and was told the port is in use")
        #expect(try echoesExactly(Array("before".utf8), through: entry))
        let asker = try #require(tunnel.local.links.reverseForwardLinks.first)
        asker.close(.closedByPeer)
        #expect(
            eventually(within: 10) {
                tunnel.local.links.reverseForwardLinks.first.map { $0 !== asker } == true
                    && tunnel.local.reverseForwardResult(listen: entry) == .bound
            })
        #expect(try echoesExactly(Array("after".utf8), through: entry))
    }
}
