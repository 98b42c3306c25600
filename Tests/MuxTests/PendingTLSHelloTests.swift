import Crypto
import Testing

@testable import Mux

@Suite struct PendingTLSHelloTests {
    let now: UInt64 = 1_800_000_000_000
    static let serverName = "cover.example"

    /// A part of a local agent's hello, by where one of its bytes lies.
    enum HelloPart: CaseIterable, Sendable {
        case randomNonce, randomTail, sessionID, x25519Share, hybridShare, serverName, lastByte

        /// The index of a byte of this part in `hello`.
        func index(in hello: [UInt8]) throws -> Int {
            let fields = try #require(ClientHelloFields(record: hello))
            return switch self {
            case .randomNonce: fields.randomRange.lowerBound + 5
            case .randomTail: fields.randomRange.upperBound - 1
            case .sessionID: fields.sessionIDRange.lowerBound + 20
            case .x25519Share: try #require(fields.x25519Share).lowerBound + 7
            case .hybridShare: try #require(fields.hybridX25519Share).lowerBound + 3
            case .serverName:
                try #require(Self.firstIndex(of: Array(PendingTLSHelloTests.serverName.utf8), in: hello)) + 2
            case .lastByte: hello.count - 1
            }
        }

        private static func firstIndex(of needle: [UInt8], in bytes: [UInt8]) -> Int? {
            (0...bytes.count - needle.count).first { Array(bytes[$0..<$0 + needle.count]) == needle }
        }
    }

    private func makeKey() throws -> PreSharedKey {
        try PreSharedKey(base64: PreSharedKey.generateBase64(), source: "test")
    }

    /// A local agent's hello under `key`, stamped `stamp`, made as `Link.authenticateTLS` makes it.
    private func makeHello(key: PreSharedKey, stamp: UInt64, seed: UInt64 = 1) throws -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        let handshake = try TLSClientHandshake(key: key)
        var hello = BrowserClientHello(
            serverName: Self.serverName, x25519Share: handshake.x25519Share,
            hybridX25519Share: handshake.hybridX25519Share,
            echKey: try TLSHelloAuthentication.unusedX25519PublicKey(), using: &generator)
        let random = randomBytes(32, using: &generator)
        hello.fill(random: random)
        hello.fill(sessionID: handshake.sessionID(authenticating: hello.bytes, random: random[...], nowMillis: stamp))
        return hello.bytes
    }

    /// The progress as a comparable word.
    private func outcome(_ progress: PendingTLSHello.Progress) -> String {
        switch progress {
        case .incomplete: "incomplete"
        case .notOurs(let reason, _): "not ours: \(reason)"
        case .complete: "complete"
        }
    }

    /// Gives `bytes` whole to a new pending hello checked against `keys`; returns its outcome.
    private func outcome(of bytes: [UInt8], keys: [PreSharedKey]) -> String {
        var pending = PendingTLSHello()
        var last = "nothing given"
        while pending.received.count < bytes.count {
            let start = pending.received.count
            let slice = bytes[start..<min(bytes.count, start + pending.missing)]
            last = outcome(pending.append(slice, keys: keys, nowMillis: now, notBefore: 0))
            guard last == "incomplete" else { break }
        }
        return last
    }

    @Test func helloDeliveredOneByteAtATimeCompletesAtItsLastByte() throws {
        let key = try makeKey()
        let hello = try makeHello(key: key, stamp: now)
        var pending = PendingTLSHello()
        let outcomes = hello.indices.map { index in
            outcome(pending.append(hello[index...index], keys: [key], nowMillis: now, notBefore: 0))
        }
        #expect(outcomes == Array(repeating: "incomplete", count: hello.count - 1) + ["complete"])
    }

    @Test func missingAsksForTheHeaderThenExactlyTheRestOfTheRecord() throws {
        let key = try makeKey()
        let hello = try makeHello(key: key, stamp: now)
        var pending = PendingTLSHello()
        var reaches: [Int] = []
        for index in hello.indices {
            reaches.append(pending.received.count + pending.missing)
            _ = pending.append(hello[index...index], keys: [key], nowMillis: now, notBefore: 0)
        }
        let headerSize = TLSRecord.headerSize
        #expect(
            reaches
                == Array(repeating: headerSize, count: headerSize)
                + Array(repeating: hello.count, count: hello.count - headerSize))
    }

    @Test func completeHelloLeavesNothingMissing() throws {
        let key = try makeKey()
        let hello = try makeHello(key: key, stamp: now)
        var pending = PendingTLSHello()
        _ = pending.append(hello[..<TLSRecord.headerSize], keys: [key], nowMillis: now, notBefore: 0)
        _ = pending.append(hello[TLSRecord.headerSize...], keys: [key], nowMillis: now, notBefore: 0)
        #expect(pending.missing == 0)
    }

    @Test(arguments: HelloPart.allCases)
    func helloWithAFlippedByteIsNotAuthentic(in part: HelloPart) throws {
        let key = try makeKey()
        var hello = try makeHello(key: key, stamp: now)
        hello[try part.index(in: hello)] ^= 0x01
        #expect(outcome(of: hello, keys: [key]) == "not ours: not authentic")
    }

    @Test func helloMadeWithAnotherKeyIsNotAuthentic() throws {
        let hello = try makeHello(key: try makeKey(), stamp: now)
        #expect(outcome(of: hello, keys: [try makeKey()]) == "not ours: not authentic")
    }

    @Test func helloStampedTenMinutesAgoIsAStaleClock() throws {
        let key = try makeKey()
        let hello = try makeHello(key: key, stamp: now - 10 * 60 * 1000)
        #expect(outcome(of: hello, keys: [key]) == "not ours: stale clock")
    }

    @Test func bytesNotStartingAsATLSHandshakeAreNotOursAfterTheirFirstFive() throws {
        let request = Array("GET / HTTP/1.1\r\n".utf8)
        let key = try makeKey()
        var pending = PendingTLSHello()
        let outcomes = request[..<TLSRecord.headerSize].indices.map { index in
            outcome(pending.append(request[index...index], keys: [key], nowMillis: now, notBefore: 0))
        }
        #expect(
            outcomes == Array(repeating: "incomplete", count: TLSRecord.headerSize - 1) + ["not ours: not authentic"])
    }

    @Test func recordLongerThanTheLimitIsNotOursAtItsHeader() throws {
        let header = TLSRecord.header(
            .handshake, length: Limits.maxTLSClientHello - TLSRecord.headerSize + 1,
            version: TLSRecord.clientHelloVersion)
        var pending = PendingTLSHello()
        let progress = pending.append(header[...], keys: [try makeKey()], nowMillis: now, notBefore: 0)
        #expect(outcome(progress) == "not ours: not authentic")
    }

    @Test func recordOfExactlyTheLimitIsAwaited() throws {
        let header = TLSRecord.header(
            .handshake, length: Limits.maxTLSClientHello - TLSRecord.headerSize, version: TLSRecord.clientHelloVersion)
        var pending = PendingTLSHello()
        let progress = pending.append(header[...], keys: [try makeKey()], nowMillis: now, notBefore: 0)
        #expect(outcome(progress) == "incomplete")
    }

    @Test func receivedHoldsEveryByteGiven() throws {
        let key = try makeKey()
        let hello = try makeHello(key: key, stamp: now)
        var pending = PendingTLSHello()
        while pending.missing > 0 {
            let start = pending.received.count
            _ = pending.append(
                hello[start..<start + min(pending.missing, 7)], keys: [key], nowMillis: now, notBefore: 0)
        }
        #expect(pending.received == hello)
    }
}
