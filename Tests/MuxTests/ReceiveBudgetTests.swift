import Testing

@testable import Mux

@Suite struct ReceiveBudgetTests {
    @Test func reservationsComeOutOfTheBudgetAndGoBackOnRelease() {
        let budget = ReceiveBudget(bytes: 100)
        #expect(budget.reserve(upTo: 60, atLeast: 10) == 60)
        #expect(budget.reserve(upTo: 60, atLeast: 10) == 40)
        #expect(budget.remaining == 0)
        budget.release(60)
        #expect(budget.remaining == 60)
    }

    @Test func spentBudgetStillGrantsTheMinimumSoEveryStreamProgresses() {
        let budget = ReceiveBudget(bytes: 50)
        _ = budget.reserve(upTo: 50, atLeast: 10)
        #expect(budget.reserve(upTo: 50, atLeast: 10) == 10)
        #expect(budget.remaining == -10)
        #expect(budget.reserve(upTo: 50, atLeast: 0) == 0)
    }

    /// Links draw on the agent's budget too: however many links key holders open, their streams together hold
    /// no more than the agent allows (beyond the minimum window each).
    @Test func linkBudgetsTogetherStayWithinTheAgentsBudget() {
        let agent = ReceiveBudget(bytes: 100)
        let links = (0..<4).map { _ in ReceiveBudget(bytes: 64, within: agent) }
        let granted = links.map { $0.reserve(upTo: 64, atLeast: 0) }
        #expect(granted == [64, 36, 0, 0])
        #expect(agent.remaining == 0)
        #expect(links[3].reserve(upTo: 64, atLeast: 10) == 10)
        #expect(agent.remaining == -10)
        links[0].release(64)
        #expect(agent.remaining == 54)
        #expect(links[0].remaining == 64)
        #expect(links[2].reserve(upTo: 64, atLeast: 0) == 54)
    }
}
