import Testing

@testable import Crypto

@Suite struct HelloReplayCacheTests {
    let now: UInt64 = 1_800_000_000_000

    private func identity(_ number: Int, sentAt: UInt64) -> HelloIdentity {
        withUnsafeBytes(of: number) { HelloIdentity(tag: Array($0), sentAt: sentAt) }
    }

    @Test func helloIsAdmittedOnceAndItsReplayRefused() {
        var cache = HelloReplayCache()
        let first = cache.admit(identity(1, sentAt: now), nowMillis: now)
        let replay = cache.admit(identity(1, sentAt: now), nowMillis: now + 5_000)
        #expect(first)
        #expect(!replay)
    }

    @Test func realHelloFromTheHandshakeIsRefusedTheSecondTime() throws {
        let key = try makeKey()
        let hello = try ClientHandshake(key: key, nowMillis: now).hello
        var cache = HelloReplayCache()
        let first = cache.admit(try ServerHandshake.verify(hello, keys: [key], nowMillis: now).identity, nowMillis: now)
        let again = cache.admit(
            try ServerHandshake.verify(hello, keys: [key], nowMillis: now + 30_000).identity, nowMillis: now + 30_000)
        #expect(first)
        #expect(!again)
    }

    @Test func hellosOutsideTheClockWindowAreForgotten() {
        var cache = HelloReplayCache()
        _ = cache.admit(identity(0, sentAt: now), nowMillis: now)
        let later = now + UInt64(ServerHandshake.maximumClockSkew) * 1000 + 1
        for number in 1..<1024 { _ = cache.admit(identity(number, sentAt: later), nowMillis: later) }
        #expect(cache.count == 1023)
    }

    @Test func fullCacheRefusesNewHellosInsteadOfForgettingLiveOnes() {
        var cache = HelloReplayCache()
        for number in 0..<HelloReplayCache.capacity { _ = cache.admit(identity(number, sentAt: now), nowMillis: now) }
        let overflow = cache.admit(identity(-1, sentAt: now), nowMillis: now)
        #expect(!overflow)
        #expect(cache.count == HelloReplayCache.capacity)
    }
}
