import Testing

@testable import Mux

/// The bounds on the relays to the cover, with small capacities and relays over socketpairs: which relay is
/// closed for a new one, and which are idle.
@Suite final class CoverRelaysTests {
    private let epoll: Epoll

    init() throws {
        epoll = try Epoll()
    }

    deinit {
        epoll.close()
    }

    /// A relay between two fresh socketpairs, its client side watched by `epoll` as a pending connection is.
    private func relay(at now: UInt64) throws -> (relay: CoverRelay, ends: [Socket]) {
        let (client, clientPeer) = try connectedPair()
        let (cover, coverPeer) = try connectedPair()
        try epoll.watch(client.fd, token: CoverRelays.token(client.fd))
        return (
            CoverRelay(client: client, cover: cover, received: [], now: now), [client, clientPeer, cover, coverPeer]
        )
    }

    private func close(_ sockets: [Socket]) {
        for socket in sockets { socket.close() }
    }

    private func source(_ last: UInt8) -> ConnectionSource { ConnectionSource(addressBytes: [127, 0, 0, last]) }

    @Test func aSourceAtItsCapGivesUpItsOldestRelay() throws {
        var relays = CoverRelays(capacity: 8, capacityPerSource: 2, idleTimeout: 60)
        var generator = SeededGenerator(seed: 1)
        var made: [(relay: CoverRelay, ends: [Socket])] = []
        for now in [UInt64(10), 20, 30] { made.append(try relay(at: now)) }
        defer { close(made.flatMap(\.ends)) }
        #expect(relays.add(made[0].relay, from: source(2), now: 10, epoll: epoll, using: &generator) == nil)
        #expect(relays.add(made[1].relay, from: source(2), now: 20, epoll: epoll, using: &generator) == nil)
        let shed = relays.add(made[2].relay, from: source(2), now: 30, epoll: epoll, using: &generator)
        #expect(shed?.client == made[0].relay.client)
        #expect(relays.count == 2)
    }

    @Test func aFullTableGivesUpAnOldRelayOfAnotherSource() throws {
        var relays = CoverRelays(capacity: 2, capacityPerSource: 2, idleTimeout: 60)
        var generator = SeededGenerator(seed: 2)
        var made: [(relay: CoverRelay, ends: [Socket])] = []
        for now in [UInt64(10), 20, 30] { made.append(try relay(at: now)) }
        defer { close(made.flatMap(\.ends)) }
        _ = relays.add(made[0].relay, from: source(2), now: 10, epoll: epoll, using: &generator)
        _ = relays.add(made[1].relay, from: source(3), now: 20, epoll: epoll, using: &generator)
        let shed = relays.add(made[2].relay, from: source(4), now: 30, epoll: epoll, using: &generator)
        #expect(shed?.client == made[0].relay.client)
        #expect(relays.count == 2)
        #expect(relays.clientDescriptor(of: made[2].relay.cover.fd) == made[2].relay.client.fd)
    }

    @Test func aRelayThatMovedNothingForTheIdleTimeoutIsIdle() throws {
        var relays = CoverRelays(capacity: 8, capacityPerSource: 8, idleTimeout: 5)
        var generator = SeededGenerator(seed: 3)
        let second: UInt64 = 1_000_000_000
        let old = try relay(at: 1 * second)
        let young = try relay(at: 4 * second)
        defer { close(old.ends + young.ends) }
        _ = relays.add(old.relay, from: source(2), now: 1 * second, epoll: epoll, using: &generator)
        _ = relays.add(young.relay, from: source(3), now: 4 * second, epoll: epoll, using: &generator)
        #expect(relays.idle(now: 5 * second).isEmpty)
        #expect(relays.idle(now: 0).isEmpty, "a relay begun after the sweep read its clock is not idle")
        #expect(relays.idle(now: 6 * second) == [old.relay.client.fd])
    }
}
