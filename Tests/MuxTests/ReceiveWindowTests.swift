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

    @Test func creditReturnsOnceAQuarterOfTheWindowIsConsumed() {
        var window = ReceiveWindow(size: 100, targetSize: 100)
        _ = window.receive(100)
        #expect(window.consume(24) { _ in 0 } == nil)
        #expect(window.consume(1) { _ in 0 } == 25)
        #expect(window.peerCredit == 25)
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

@Suite struct ReceiveWindowAutoTuningTests {
    let start = ContinuousClock.now

    /// Consumes half a window at `offset` from the start, and returns the target size afterwards.
    private func consumeHalf(_ window: inout ReceiveWindow, at offset: Duration, roundTrip: Duration?) -> Int {
        _ = window.receive(window.size / 2)
        _ = window.consume(window.size / 2, roundTrip: roundTrip, now: start + offset) { $0 }
        return window.targetSize
    }

    @Test func windowConsumedFasterThanTwoRoundTripsDoublesUpToTheMaximum() {
        var window = ReceiveWindow(size: 100, targetSize: 100, maxSize: 300)
        let rtt = Duration.milliseconds(100)
        #expect(consumeHalf(&window, at: .zero, roundTrip: rtt) == 100)  // the first update only starts the clock
        #expect(consumeHalf(&window, at: .milliseconds(50), roundTrip: rtt) == 200)
        #expect(consumeHalf(&window, at: .milliseconds(100), roundTrip: rtt) == 300)
        #expect(consumeHalf(&window, at: .milliseconds(150), roundTrip: rtt) == 300)
        #expect(window.size == 300)
    }

    @Test func windowConsumedSlowerThanTwoRoundTripsKeepsItsSize() {
        var window = ReceiveWindow(size: 100, targetSize: 100, maxSize: 1000)
        let rtt = Duration.milliseconds(10)
        for step in 0..<5 {
            _ = consumeHalf(&window, at: .milliseconds(25 * step), roundTrip: rtt)
        }
        #expect(window.targetSize == 100)
    }

    /// Credit returns every quarter window, but a stream is window-limited only if it consumes half a window
    /// within two round trips: one that takes three round trips per half window keeps its size, although each
    /// update comes 1.5 round trips after the last.
    @Test func growthIsJudgedPerHalfWindowNotPerUpdate() {
        var window = ReceiveWindow(size: 100, targetSize: 100, maxSize: 1000)
        let rtt = Duration.milliseconds(10)
        for step in 0..<12 {
            _ = window.receive(25)
            _ = window.consume(25, roundTrip: rtt, now: start + .milliseconds(15 * step)) { $0 }
        }
        #expect(window.targetSize == 100)
    }

    @Test func windowWithoutAMeasuredRoundTripNeverGrows() {
        var window = ReceiveWindow(size: 100, targetSize: 100, maxSize: 1000)
        for step in 0..<5 {
            _ = consumeHalf(&window, at: .microseconds(step), roundTrip: nil)
        }
        #expect(window.targetSize == 100)
    }
}
