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
}
