import Testing

@testable import Mux

@Suite struct StreamStateTests {
    @Test func dataIsAllowedOnlyBetweenOpenOKAndFIN() {
        var state = StreamState()
        #expect(!state.canReceiveData)
        let established = state.establish()
        #expect(established)
        #expect(state.canReceiveData)
        let finAccepted = state.receiveFIN()
        #expect(finAccepted)
        #expect(!state.canReceiveData)
    }

    @Test func secondFINIsRefused() {
        var state = StreamState()
        _ = state.establish()
        _ = state.receiveFIN()
        let secondAccepted = state.receiveFIN()
        #expect(!secondAccepted)
    }

    @Test func halfClosedStreamStillSendsItsOwnFINOnce() {
        var state = StreamState()
        _ = state.establish()
        _ = state.receiveFIN()
        let firstSent = state.sendFIN()
        let secondSent = state.sendFIN()
        #expect(firstSent)
        #expect(!secondSent)
    }

    @Test func resetStreamCannotBeEstablishedFinishedOrResetAgain() {
        var state = StreamState()
        let reset = state.reset()
        let resetAgain = state.reset()
        let established = state.establish()
        let finSent = state.sendFIN()
        #expect(reset)
        #expect(!resetAgain)
        #expect(!established)
        #expect(!finSent)
    }
}
