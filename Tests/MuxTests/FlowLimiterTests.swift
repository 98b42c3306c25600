import CoreMetrics
import Testing

@testable import Mux

/// A flow as the limiter sees it, which records whether it was ended to make room.
private final class TestFlow: LimitedFlow, @unchecked Sendable {  // `evicted` is a `Locked`
    let activity = FlowActivity()
    let evicted = Locked(false)

    /// A flow whose client sent a question (and, if `answered`, got its answer).
    init(answered: Bool) {
        activity.touchToTarget()
        if answered { activity.touchToClient() }
    }

    func evict() { evicted.withLock { $0 = true } }
}

@Suite struct FlowLimiterTests {
    private let metrics = DatagramMetrics(factory: NOOPMetricsHandler.instance)
    private let here: [UInt8] = [127, 0, 0, 1]
    private let there: [UInt8] = [127, 0, 0, 2]

    @Test func atTheCapAnAnsweredFlowMakesRoomForANewOne() {
        let limiter = FlowLimiter(limit: 2, perSourceLimit: 2, metrics: metrics)
        let (waiting, answered) = (TestFlow(answered: false), TestFlow(answered: true))
        #expect(limiter.admit(waiting, from: here) && limiter.admit(answered, from: here))
        #expect(limiter.admit(TestFlow(answered: false), from: here))
        #expect(answered.evicted.withLock { $0 } && !waiting.evicted.withLock { $0 })
        #expect(limiter.count == 2)
        #expect(metrics.evictions == 1)
    }

    @Test func atTheCapWithEveryFlowAwaitingAnAnswerTheNewOneIsRefusedAndCounted() {
        let limiter = FlowLimiter(limit: 2, perSourceLimit: 2, metrics: metrics)
        let flows = [TestFlow(answered: false), TestFlow(answered: false)]
        #expect(flows.allSatisfy { limiter.admit($0, from: here) })
        #expect(!limiter.admit(TestFlow(answered: false), from: there))
        #expect(metrics.refusals(.tooManyStreams) == 1)
        #expect(flows.allSatisfy { !$0.evicted.withLock { $0 } })
        limiter.release(flows[0])
        #expect(limiter.admit(TestFlow(answered: false), from: there), "a released slot is free again")
    }

    @Test func oneSourceAtItsCapDoesNotKeepAnotherOut() {
        let limiter = FlowLimiter(limit: 4, perSourceLimit: 1, metrics: metrics)
        #expect(limiter.admit(TestFlow(answered: false), from: here))
        #expect(!limiter.admit(TestFlow(answered: false), from: here), "the source is at its cap")
        #expect(limiter.admit(TestFlow(answered: false), from: there))
        #expect(limiter.count == 2)
    }

    @Test func aSourceAtItsCapGivesUpItsOwnAnsweredFlowNotAnothersOne() {
        let limiter = FlowLimiter(limit: 4, perSourceLimit: 1, metrics: metrics)
        let (mine, theirs) = (TestFlow(answered: true), TestFlow(answered: true))
        #expect(limiter.admit(theirs, from: there) && limiter.admit(mine, from: here))
        #expect(limiter.admit(TestFlow(answered: false), from: here))
        #expect(mine.evicted.withLock { $0 } && !theirs.evicted.withLock { $0 })
    }

    @Test func aSampledSetKeepsEveryElementOnceThroughRemovals() {
        var set = SampledSet<Int>()
        let owners = (0..<10).map { _ in TestFlow(answered: true) }  // alive, so their identifiers stay distinct
        let keys = owners.map(ObjectIdentifier.init)
        for (index, key) in keys.enumerated() { set.insert(index, for: key) }
        #expect(set.remove(keys[3]) == 3 && set.remove(keys[9]) == 9 && set.remove(keys[3]) == nil)
        #expect(set.elements.sorted() == [0, 1, 2, 4, 5, 6, 7, 8])
        #expect(set.sample(50).allSatisfy { set.elements.contains($0) })
    }
}
