import FuzzChecks
import Testing

@testable import Mux

/// The stream's decisions without sockets or threads: every transition, every violation, and random
/// interleavings of events checked against the invariants (`FuzzChecks.streamMachine`).
@Suite struct StreamMachineTests {
    private let id: StreamID = 1

    private func machine(opener: Bool, connected: Bool = true) -> StreamMachine {
        StreamMachine(
            isOpener: opener, window: ReceiveWindow(size: 1 << 17, targetSize: 1 << 17),
            sendCredit: Limits.openingWindow, isConnected: connected)
    }

    /// An opener's machine after OPEN_OK.
    private func established() throws -> StreamMachine {
        var machine = machine(opener: true)
        _ = try machine.receiveOpenOK(window: 1 << 17, id: id)
        return machine
    }

    // MARK: Frames from the peer

    @Test func openerTakesDataOnlyBetweenOpenOKAndFIN() throws {
        var opener = machine(opener: true)
        #expect(throws: LinkError.protocolViolation("DATA on stream 1 before OPEN_OK")) {
            try opener.receiveData(count: 1, id: 1)
        }
        #expect(try opener.receiveOpenOK(window: 1 << 17, id: id) == [.countOpened, .wake])
        #expect(try opener.receiveData(count: 10, id: id) == .writeNow)
        #expect(try opener.receiveFIN(id: id) == [.wake, .endConnectionOutput])
        #expect(throws: LinkError.protocolViolation("DATA on stream 1 after FIN")) {
            try opener.receiveData(count: 1, id: 1)
        }
    }

    @Test func openerRefusesFINBeforeOpenOKAndASecondOpenOK() throws {
        var opener = machine(opener: true)
        #expect(throws: LinkError.protocolViolation("unexpected FIN on stream 1")) { try opener.receiveFIN(id: 1) }
        _ = try opener.receiveOpenOK(window: 1 << 17, id: id)
        #expect(throws: LinkError.protocolViolation("a second OPEN_OK for stream 1")) {
            try opener.receiveOpenOK(window: 1 << 17, id: 1)
        }
    }

    @Test func openOKGrantingLessThanTheOpeningWindowIsAViolation() {
        var opener = machine(opener: true)
        #expect(throws: LinkError.self) { try opener.receiveOpenOK(window: 1000, id: 1) }
    }

    @Test func answeringEndHoldsTheOpenersDataAndFINUntilItsTargetIsConnected() throws {
        var answering = machine(opener: false, connected: false)
        #expect(try answering.receiveData(count: 100, id: id) == .hold)
        #expect(answering.hold([UInt8](repeating: 1, count: 100)) == [.wake])
        #expect(try answering.receiveFIN(id: id) == [.wake])
        #expect(answering.accept(id: id) == [.send(.openOK(1, window: 1 << 17)), .deliverHeld, .countOpened])
        #expect(answering.takeHeldForDirectWrite() == [UInt8](repeating: 1, count: 100))
        #expect(
            answering.wroteDirectly(100, of: 100, remainder: [], id: id, roundTrip: nil, grow: { $0 }) == [
                .countDown(100)
            ])
        #expect(answering.takeHeldForDirectWrite() == nil)
        #expect(answering.heldDelivered() == [.endConnectionOutput])
    }

    @Test func theOpenerMaySendNoMoreThanTheOpeningWindowBeforeOpenOK() throws {
        var answering = machine(opener: false, connected: false)
        #expect(try answering.receiveData(count: Limits.openingWindow, id: id) == .hold)
        #expect(throws: LinkError.self) { try answering.receiveData(count: 1, id: 1) }
    }

    @Test func dataBeyondTheWindowAndCreditBeyond32BitsAreViolations() throws {
        var opener = try established()
        #expect(throws: LinkError.protocolViolation("stream 1 overran its window")) {
            try opener.receiveData(count: (1 << 17) + 1, id: 1)
        }
        #expect(throws: LinkError.protocolViolation("stream 1 window overflow")) {
            try opener.receiveWindow(increment: .max, id: 1)
        }
    }

    @Test func framesAfterTheStreamWasResetAreIgnored() throws {
        var opener = try established()
        _ = opener.abort(sending: .aborted)
        #expect(try opener.receiveData(count: 5, id: id) == .ignore)
        #expect(try opener.receiveFIN(id: id) == [])
        #expect(try opener.receiveWindow(increment: 5, id: id) == [])
        #expect(try opener.receiveOpenOK(window: 1 << 17, id: id) == [])
    }

    // MARK: Sending

    @Test func onlyTheOpenerSendsFINBeforeOpenOKAndEachSendsItOnce() throws {
        var opener = machine(opener: true)
        var answering = machine(opener: false)
        let (first, second, answeringFirst) = (opener.sendFIN(), opener.sendFIN(), answering.sendFIN())
        #expect(first && !second && !answeringFirst)
    }

    @Test func creditIsTakenAndGivenBackAndWaitsAtZero() throws {
        var opener = try established()
        #expect(opener.takeCredit(upTo: 1 << 20) == .granted(1 << 17))
        #expect(opener.takeCredit(upTo: 1) == .wait)
        opener.settleRead(granted: 1 << 17, received: 100)
        #expect(opener.sendCredit == (1 << 17) - 100)
        _ = opener.abort(sending: .aborted)
        #expect(opener.takeCredit(upTo: 1) == .reset)
    }

    // MARK: Reset

    @Test func abortTellsThePeerOnceAndWakesEveryThread() throws {
        var opener = try established()
        let effects = opener.abort(sending: .aborted)
        #expect(effects == [.abortConnection(shutdownBoth: false), .wake, .cancelQueued(.aborted)])
        let again = opener.abort(sending: .aborted)
        #expect(again == [])
        let finSent = opener.sendFIN()
        #expect(!finSent)
        #expect(opener.openOutcome == .established)
    }

    @Test func abortWhileTheDownlinkThreadWritesShutsDownBothSides() throws {
        var opener = try established()
        _ = try opener.receiveData(count: 10, id: id)
        _ = opener.wroteDirectly(4, of: 10, remainder: [1, 2, 3, 4, 5, 6], id: id, roundTrip: nil, grow: { $0 })
        #expect(opener.nextDownlinkStep() == .write([1, 2, 3, 4, 5, 6]))
        #expect(opener.abort(sending: nil).first == .abortConnection(shutdownBoth: true))
    }

    @Test func thePeersResetAnswersAnOpenWithItsReason() {
        var opener = machine(opener: true)
        let effects = opener.receiveReset(.notAllowed)
        #expect(effects == [.abortConnection(shutdownBoth: false), .wake, .cancelQueued(nil)])
        #expect(opener.openOutcome == .refused(.notAllowed))
    }

    @Test func anUnansweredOpenIsResetUnlessAnAnswerCame() throws {
        var waiting = machine(opener: true, connected: false)
        #expect(waiting.openUnanswered() == [.wake, .cancelQueued(.aborted)])
        #expect(waiting.openOutcome == .unanswered)
        var answered = try established()
        #expect(answered.openUnanswered() == [])
    }

    @Test func aClosedLinkLeavesAStreamThatExchangedFINsToFinishWriting() throws {
        var opener = try established()
        _ = opener.sendFIN()
        _ = try opener.receiveData(count: 10, id: id)
        _ = opener.wroteDirectly(0, of: 10, remainder: [UInt8](repeating: 0, count: 10), id: id, roundTrip: nil) { $0 }
        _ = try opener.receiveFIN(id: id)
        #expect(opener.linkClosed() == [])
        var other = try established()
        #expect(other.linkClosed().contains(.cancelQueued(nil)))
    }

    // MARK: The connection's two directions

    @Test func aPartialDirectWriteHandsTheRestFirstToADownlinkThread() throws {
        var opener = try established()
        _ = try opener.receiveData(count: 10, id: id)
        let effects = opener.wroteDirectly(4, of: 10, remainder: [5, 6, 7, 8, 9, 10], id: id, roundTrip: nil) { $0 }
        #expect(effects == [.countDown(4), .startDownlinkThread])
        #expect(try opener.receiveData(count: 2, id: id) == .hold)
        _ = opener.hold([11, 12])
        #expect(opener.nextDownlinkStep() == .write([5, 6, 7, 8, 9, 10]))
        #expect(opener.downlinkWrote(6, failed: false, id: id, roundTrip: nil) { $0 } == [.countDown(6)])
        #expect(opener.nextDownlinkStep() == .write([11, 12]))
        _ = opener.downlinkWrote(2, failed: false, id: id, roundTrip: nil) { $0 }
        #expect(opener.nextDownlinkStep() == .wait)
        _ = try opener.receiveFIN(id: id)
        #expect(opener.nextDownlinkStep() == .endOutput)
    }

    @Test func aFailedWriteResetsTheStream() throws {
        var opener = try established()
        _ = try opener.receiveData(count: 10, id: id)
        #expect(
            opener.wroteDirectly(nil, of: 10, remainder: [], id: id, roundTrip: nil) { $0 }.contains(
                .cancelQueued(.aborted)))
        #expect(opener.isReset)
    }

    @Test func theStreamRetiresOnceWhenBothDirectionsAreDone() throws {
        var opener = try established()
        #expect(opener.uplinkEnded() == [])
        #expect(try opener.receiveFIN(id: id) == [.wake, .endConnectionOutput, .retire])
        #expect(opener.abort(sending: .aborted) == [], "a retired stream cannot be reset")
    }

    @Test func aDownlinkThreadEndsItsDirectionItselfAndNothingElseCan() throws {
        var opener = try established()
        _ = try opener.receiveData(count: 10, id: id)
        _ = opener.wroteDirectly(0, of: 10, remainder: [UInt8](repeating: 0, count: 10), id: id, roundTrip: nil) { $0 }
        #expect(opener.uplinkEnded() == [], "the thread, not the uplink, ends the downlink")
        _ = try opener.receiveFIN(id: id)
        #expect(opener.abort(sending: .aborted).contains(.retire) == false)
        #expect(opener.nextDownlinkStep() == .stop)
        #expect(opener.downlinkThreadEnded() == [.wake, .retire])
    }

    @Test func aDownlinkThreadThatDidNotStartResetsTheStreamWhichThenRetires() throws {
        var opener = try established()
        _ = try opener.receiveData(count: 10, id: id)
        _ = opener.wroteDirectly(0, of: 10, remainder: [UInt8](repeating: 0, count: 10), id: id, roundTrip: nil) { $0 }
        _ = opener.uplinkEnded()
        #expect(
            opener.downlinkThreadDidNotStart() == [
                .abortConnection(shutdownBoth: false), .wake, .cancelQueued(.aborted), .retire,
            ])
    }

    // MARK: Any order of events

    /// 3,000 seeded sequences of up to 400 events each, through the same checks the fuzz target makes: bytes
    /// written once and in order, all before the FIN; nothing after RESET; credit never negative; one retirement.
    @Test func randomEventSequencesKeepEveryInvariant() {
        var generator = SeededGenerator(seed: 28)
        for _ in 0..<3_000 {
            let input = (0..<Int(generator.next() % 400)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            FuzzChecks.streamMachine(input)
        }
    }
}
