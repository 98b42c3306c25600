import Testing

@testable import Mux

@Suite struct StreamLifecycleTests {
    /// The opener's lifecycle after OPEN_OK.
    private func established() -> StreamLifecycle {
        var lifecycle = StreamLifecycle(isOpener: true)
        _ = lifecycle.establish()
        return lifecycle
    }

    // MARK: The protocol's half-close rules

    @Test func openerReceivesDataOnlyBetweenOpenOKAndFIN() {
        var lifecycle = StreamLifecycle(isOpener: true)
        #expect(!lifecycle.canReceiveData)
        let established = lifecycle.establish()
        #expect(established)
        #expect(lifecycle.canReceiveData)
        let finAccepted = lifecycle.receiveFIN()
        #expect(finAccepted)
        #expect(!lifecycle.canReceiveData)
    }

    @Test func openerRefusesFINBeforeOpenOK() {
        var lifecycle = StreamLifecycle(isOpener: true)
        let accepted = lifecycle.receiveFIN()
        #expect(!accepted)
    }

    @Test func answeringEndReceivesTheOpenersDataAndFINBeforeItsOpenOK() {
        var lifecycle = StreamLifecycle(isOpener: false)
        #expect(lifecycle.canReceiveData)
        let finAccepted = lifecycle.receiveFIN()
        #expect(finAccepted)
        #expect(!lifecycle.canReceiveData)
    }

    @Test func onlyTheOpenerSendsFINBeforeOpenOK() {
        var opener = StreamLifecycle(isOpener: true)
        var answering = StreamLifecycle(isOpener: false)
        let openerSent = opener.sendFIN()
        let answeringSent = answering.sendFIN()
        #expect(openerSent)
        #expect(!answeringSent)
    }

    @Test func secondFINIsRefused() {
        var lifecycle = established()
        _ = lifecycle.receiveFIN()
        let secondAccepted = lifecycle.receiveFIN()
        #expect(!secondAccepted)
    }

    @Test func halfClosedStreamStillSendsItsOwnFINOnce() {
        var lifecycle = established()
        _ = lifecycle.receiveFIN()
        let firstSent = lifecycle.sendFIN()
        let secondSent = lifecycle.sendFIN()
        #expect(firstSent)
        #expect(!secondSent)
        #expect(lifecycle.isDoneWithLink)
    }

    @Test func resetStreamCannotBeEstablishedFinishedOrResetAgain() {
        var lifecycle = StreamLifecycle(isOpener: true)
        let reset = lifecycle.reset()
        let resetAgain = lifecycle.reset()
        let established = lifecycle.establish()
        let finSent = lifecycle.sendFIN()
        #expect(reset)
        #expect(!resetAgain)
        #expect(!established)
        #expect(!finSent)
    }

    // MARK: Who uses the descriptor

    @Test func retiresOnlyOnceBothDirectionsAreDone() {
        var lifecycle = established()
        lifecycle.endUplink()
        let retiredWithDownlinkRunning = lifecycle.retire()
        #expect(!retiredWithDownlinkRunning)
        let ended = lifecycle.endDirectDownlink()
        #expect(ended)
        let retired = lifecycle.retire()
        let retiredAgain = lifecycle.retire()
        #expect(retired)
        #expect(!retiredAgain)
    }

    @Test func aDownlinkThreadEndsItsDirectionItselfAndNothingElseCan() {
        var lifecycle = established()
        lifecycle.startDownlinkThread()
        lifecycle.endUplink()
        let endedDirectly = lifecycle.endDirectDownlink()
        let retiredWithThreadRunning = lifecycle.retire()
        #expect(!endedDirectly)
        #expect(!retiredWithThreadRunning)
        lifecycle.endDownlinkThread()
        let retired = lifecycle.retire()
        #expect(retired)
    }

    @Test func aDownlinkThreadInsideSendIsWriting() {
        var lifecycle = established()
        lifecycle.startDownlinkThread()
        #expect(!lifecycle.isWriting)
        lifecycle.setWriting(true)
        #expect(lifecycle.isWriting)
        lifecycle.setWriting(false)
        #expect(!lifecycle.isWriting)
    }

    @Test func aDownlinkThreadThatDidNotStartLeavesTheDirectionToWhoeverEndsTheStream() {
        var lifecycle = established()
        lifecycle.startDownlinkThread()
        lifecycle.downlinkThreadDidNotStart()
        _ = lifecycle.reset()
        let ended = lifecycle.endDirectDownlink()
        #expect(ended)
    }

    @Test func aRetiredStreamCannotBeReset() {
        var lifecycle = established()
        lifecycle.endUplink()
        _ = lifecycle.endDirectDownlink()
        _ = lifecycle.retire()
        let reset = lifecycle.reset()
        #expect(!reset)
    }
}
