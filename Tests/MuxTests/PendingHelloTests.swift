import Crypto
import Testing

@testable import Mux

@Suite struct PendingHelloTests {
    let now: UInt64 = 1_800_000_000_000

    private func makeKey() throws -> PreSharedKey {
        try PreSharedKey(base64: PreSharedKey.generateBase64(), source: "test")
    }

    /// A hello with at least one byte of padding.
    private func paddedHello(key: PreSharedKey) throws -> [UInt8] {
        while true {
            let hello = try ClientHandshake(key: key, nowMillis: now).hello
            if hello.count > HandshakeMessage.clientHeaderSize { return hello }
        }
    }

    /// The progress as a comparable word.
    private func outcome(_ progress: PendingHello.Progress) -> String {
        switch progress {
        case .incomplete: "incomplete"
        case .rejected(let reason, _): "rejected: \(reason)"
        case .complete: "complete"
        }
    }

    @Test func helloDeliveredOneByteAtATimeCompletesAtItsLastByte() throws {
        let key = try makeKey()
        let hello = try paddedHello(key: key)
        var pending = PendingHello()
        let outcomes = hello.indices.map { index in
            outcome(pending.append(hello[index...index], keys: [key], nowMillis: now, notBefore: 0))
        }
        #expect(outcomes == Array(repeating: "incomplete", count: hello.count - 1) + ["complete"])
    }

    @Test func afterTheHeaderOnlyThePaddingItAnnouncesIsAskedFor() throws {
        let key = try makeKey()
        let hello = try paddedHello(key: key)
        var pending = PendingHello()
        #expect(pending.missing == HandshakeMessage.clientHeaderSize)
        let header = hello[..<HandshakeMessage.clientHeaderSize]
        #expect(outcome(pending.append(header, keys: [key], nowMillis: now, notBefore: 0)) == "incomplete")
        #expect(pending.missing == hello.count - HandshakeMessage.clientHeaderSize)
    }

    @Test func headerUnderAnotherKeyIsRejectedBeforeAnyPaddingIsRead() throws {
        let header = try paddedHello(key: try makeKey())[..<HandshakeMessage.clientHeaderSize]
        var pending = PendingHello()
        let progress = pending.append(header, keys: [try makeKey()], nowMillis: now, notBefore: 0)
        #expect(outcome(progress) == "rejected: not authentic")
    }

    @Test func helloStampedBeforeTheAgentStartedIsRejectedAsAStaleClock() throws {
        let key = try makeKey()
        let header = try paddedHello(key: key)[..<HandshakeMessage.clientHeaderSize]
        var pending = PendingHello()
        let progress = pending.append(header, keys: [key], nowMillis: now + 1000, notBefore: now + 1)
        #expect(outcome(progress) == "rejected: stale clock")
    }
}
