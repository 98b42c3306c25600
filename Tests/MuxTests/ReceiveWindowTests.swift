import Testing

@testable import Mux

@Suite struct ReceiveWindowTests {
    @Test func receivingMoreThanTheCreditIsRefused() {
        var window = ReceiveWindow(size: 100, targetSize: 100)
        let within = window.receive(60)
        let beyond = window.receive(41)
        let upToTheEdge = window.receive(40)
        #expect(within)
        #expect(!beyond)
        #expect(upToTheEdge)
    }

    @Test func creditReturnsOnceHalfTheWindowIsConsumed() {
        var window = ReceiveWindow(size: 100, targetSize: 100)
        _ = window.receive(100)
        #expect(window.consume(49) { _ in 0 } == nil)
        #expect(window.consume(1) { _ in 0 } == 50)
        #expect(window.peerCredit == 50)
    }

    @Test func windowGrowsTowardsTargetWhenBudgetAllows() {
        var window = ReceiveWindow(size: 64, targetSize: 256)
        _ = window.receive(64)
        var asked = 0
        let increment = window.consume(64) { wanted in
            asked = wanted
            return 100
        }
        #expect(increment == 164)
        #expect(asked == 192)
        #expect(window.size == 164)
        #expect(window.peerCredit == 164)
    }
}
