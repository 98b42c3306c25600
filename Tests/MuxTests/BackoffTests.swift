import Testing

@testable import Mux

@Suite struct BackoffTests {
    @Test func waitsAreWrittenAsTheAgentWaitsThemAndJitterStaysWithinAQuarter() {
        #expect(Backoff.format(0.1874) == "187 ms")
        #expect(Backoff.format(1.37) == "1.4 s")
        #expect(Backoff.format(27.4) == "27 s")
        for _ in 0..<100 { #expect((0.75...1.25).contains(Backoff.jittered(1))) }
    }
}
