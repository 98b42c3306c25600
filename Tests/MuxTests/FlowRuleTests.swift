import Testing

@testable import Mux

/// The flow rules of docs/PROTOCOL.md §6.3, each checked against one real link driven through a socketpair.
@Suite struct FlowRuleTests {
    private func expectViolation(
        _ harness: LinkHarness, _ reason: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(harness.awaitClose() == .protocolViolation(reason), sourceLocation: sourceLocation)
    }

    private let dns = StreamTarget.endpoint(Endpoint(host: "10.0.0.53", port: 53))

    @Test func aFlowsFirstDatagramNeedsNoAnswerAndArrivesWhole() throws {
        let harness = try LinkHarness(role: .remote)
        let datagram = [UInt8](repeating: 0xAB, count: Limits.maxDatagram)
        try harness.send([.flowOpen(1, target: dns, origin: nil), .datagram(1, datagram), .datagram(1, [])])
        #expect(eventually { harness.delegate.flows.withLock { $0.first?.end.datagrams.withLock { $0.count } } == 2 })
        let flow = try #require(harness.delegate.flows.withLock { $0.first })
        #expect(flow.id == 1 && flow.target == dns)
        #expect(flow.end.datagrams.withLock { $0 } == [datagram, []], "each datagram whole, none merged or split")
    }

    @Test func aRefusedFlowIsAnsweredWithFlowCloseAndItsDatagramsAreDropped() throws {
        let harness = try LinkHarness(role: .remote)
        harness.delegate.refusesFlows.withLock { $0 = .notAllowed }
        try harness.send([.flowOpen(1, target: dns, origin: nil), .datagram(1, [1])])
        #expect(harness.receive { $0 == .flowClose(1, .notAllowed) } != nil)
        try harness.send([.datagram(1, [2]), .ping(7)])
        #expect(harness.receive { $0 == .pong(7) } != nil, "datagrams for a refused flow are dropped, the link goes on")
    }

    @Test func flowCloseFromThePeerReachesTheFlowOnceAndLaterDatagramsAreDropped() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.send([.flowOpen(1, target: dns, origin: nil)])
        #expect(eventually { harness.delegate.flows.withLock { $0.count } == 1 })
        let end = harness.delegate.flows.withLock { $0[0].end }
        try harness.send([.flowClose(1, .aborted), .datagram(1, [1]), .flowClose(1, .aborted), .ping(8)])
        #expect(harness.receive { $0 == .pong(8) } != nil)
        #expect(end.closes.withLock { $0 } == [.aborted])
        #expect(end.datagrams.withLock { $0 }.isEmpty)
    }

    @Test func aDatagramForAFlowNeverOpenedEndsTheLink() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.send([.datagram(3, [1])])
        expectViolation(harness, "frame for flow 3, which was never opened")
    }

    @Test func flowOpenWithAnIdOfTheReceiversParityEndsTheLink() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.send([.flowOpen(2, target: dns, origin: nil)])
        expectViolation(harness, "FLOW_OPEN for flow 2, an id of ours")
    }

    @Test func flowOpenWhoseIdDoesNotIncreaseEndsTheLink() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.send([.flowOpen(3, target: dns, origin: nil), .flowOpen(1, target: dns, origin: nil)])
        expectViolation(harness, "FLOW_OPEN for flow 1 does not increase the flow id")
    }

    @Test func flowsAndStreamsCountTheirIdsApart() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.send([
            .open(1, window: 65_536, target: .defaultTarget, origin: nil), .flowOpen(1, target: dns, origin: nil),
        ])
        #expect(eventually { harness.delegate.flows.withLock { $0.count } == 1 })
        #expect(harness.delegate.opened.withLock { $0.count } == 1)
    }

    @Test func theLinksEndReachesEveryFlow() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.send([.flowOpen(1, target: dns, origin: nil), .flowOpen(3, target: dns, origin: nil)])
        #expect(eventually { harness.delegate.flows.withLock { $0.count } == 2 })
        harness.link.close(.localShutdown)
        #expect(harness.delegate.flows.withLock { $0 }.allSatisfy { $0.end.linkClosed.withLock { $0 } })
        #expect(harness.link.flows.count == 0)
    }

    @Test func theOpenerSendsFlowOpenBeforeItsFirstDatagram() throws {
        let harness = try LinkHarness(role: .local)
        let id = try #require(harness.link.openFlow(to: dns, from: nil, endpoint: RecordingFlow()))
        #expect(harness.link.sendDatagram([4, 2], on: id))
        #expect(
            harness.receive { if case .flowOpen = $0 { true } else { false } } == .flowOpen(1, target: dns, origin: nil)
        )
        #expect(harness.receive { if case .datagram = $0 { true } else { false } } == .datagram(1, [4, 2]))
        harness.link.closeFlow(id, reason: .aborted)
        #expect(harness.receive { if case .flowClose = $0 { true } else { false } } == .flowClose(1, .aborted))
    }
}
