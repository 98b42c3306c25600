import Testing

@testable import Mux

/// The local agent's choice of link for each new stream, and of the link that asks each remote agent for the
/// reverse forwards; over real links on socketpairs.
@Suite struct LinkSetTests {
    private let remote = Endpoint(host: "192.0.2.1", port: 7000)

    @Test func eachRemoteAgentIsAskedByTheFirstOfItsLinksAndAnotherTakesOverWhenItGoes() throws {
        let harnesses = try (0..<3).map { _ in try LinkHarness(role: .local) }
        let set = LinkSet(remotes: [remote], linksPerRemote: 3)
        #expect(set.publish(harnesses[1].link, agentID: 1, at: 1) == true, "the first link up to agent 1 asks")
        #expect(set.publish(harnesses[0].link, agentID: 1, at: 0) == false, "a lower slot does not take it over")
        #expect(set.publish(harnesses[2].link, agentID: 2, at: 2) == true, "agent 2 is asked on its own link")
        #expect(
            set.reverseForwardLinks.map(ObjectIdentifier.init) == [1, 2].map { ObjectIdentifier(harnesses[$0].link) })
        #expect(set.withdraw(at: 1) === harnesses[0].link, "slot 0 now asks agent 1")
        #expect(set.asksForReverseForwards(at: 0))
        #expect(set.withdraw(at: 2) == nil, "no other link reaches agent 2")
    }

    @Test func newStreamsSkipALinkThatIsDrainingAndTiesTakeTurns() throws {
        let harnesses = try (0..<2).map { _ in try LinkHarness(role: .local) }
        let set = LinkSet(remotes: [remote], linksPerRemote: 2)
        for (index, harness) in harnesses.enumerated() { _ = set.publish(harness.link, agentID: 1, at: index) }
        let firstTwo = [set.await(seconds: 1), set.await(seconds: 1)].map { $0.map(ObjectIdentifier.init) }
        #expect(Set(firstTwo) == Set(harnesses.map { ObjectIdentifier($0.link) }), "two idle links take turns")
        harnesses[0].link.beginDrain()
        for _ in 0..<4 { #expect(set.await(seconds: 1) === harnesses[1].link) }
    }

    @Test func aClientWaitsForALinkAndGetsNoneOnceTheAgentStops() throws {
        let set = LinkSet(remotes: [remote], linksPerRemote: 1)
        #expect(set.await(seconds: 0.05) == nil)
        #expect(set.stop().isEmpty)
        let harness = try LinkHarness(role: .local)
        #expect(set.publish(harness.link, agentID: 1, at: 0) == nil, "nothing is published after stop")
    }
}
