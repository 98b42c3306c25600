import Glibc
import Testing

@testable import Mux

@Suite struct ThreadsTests {
    @Test func startedThreadRunsItsBody() throws {
        let ran = Completion()
        try startThread(named: "test") { ran.complete() }
        #expect(ran.wait(seconds: 5))
    }

    @Test func threadThatCannotBeCreatedIsAnErrorNotATrap() {
        // No system maps a 2^46-byte stack: pthread_create fails as it does when threads or memory run out.
        #expect(throws: ThreadError.self) { try startThread(named: "too-big", stackSize: 1 << 46) {} }
    }
}
