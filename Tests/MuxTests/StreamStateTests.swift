import Testing

@testable import Mux

@Suite struct StreamStateTests {
    @Test func dataIsAllowedOnlyBetweenOpenOKAndFIN() {
        var state = StreamState()
        #expect(!state.canReceiveData)
        let result1 = state.establish()
        #expect(result1)
        #expect(state.canReceiveData)
        let result2 = state.receiveFIN()
        #expect(result2)
        #expect(!state.canReceiveData)
    }

    @Test func secondFINIsRefused() {
        var state = StreamState()
        _ = state.establish()
        let result3 = state.receiveFIN()
        #expect(result3)
        let result4 = state.receiveFIN()
        #expect(!result4)
    }

    @Test func halfClosedStreamStillSends() {
        var state = StreamState()
        _ = state.establish()
        _ = state.receiveFIN()
        let result5 = state.sendFIN()
        #expect(result5)
        let result6 = state.sendFIN()
        #expect(!result6)
    }

    @Test func resetStreamCannotBeEstablishedOrFinished() {
        var state = StreamState()
        let result7 = state.reset()
        #expect(result7)
        let result8 = state.reset()
        #expect(!result8)
        let result9 = state.establish()
        #expect(!result9)
        let result10 = state.sendFIN()
        #expect(!result10)
    }
}
