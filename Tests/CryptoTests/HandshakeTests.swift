import CSodium
import Testing

@testable import Crypto

@Suite struct HandshakeTests {
    let now: UInt64 = 1_800_000_000_000

    /// A client whose hello has at least one byte of padding.
    private func paddedClient(key: PreSharedKey) throws -> ClientHandshake {
        while true {
            let client = try ClientHandshake(key: key, nowMillis: now)
            if client.hello.count > HandshakeMessage.clientHeaderSize { return client }
        }
    }

    @Test func sameKeyGivesMatchingSessionKeysBothWays() throws {
        let key = try makeKey()
        let keys = try handshake(clientKey: key, serverKey: key)
        var toServer = keys.client.clientSide().sealer
        var atServer = keys.server.serverSide().opener
        var toClient = keys.server.serverSide().sealer
        var atClient = keys.client.clientSide().opener
        #expect(try open(try seal([1, 2, 3], with: &toServer), with: &atServer) == [1, 2, 3])
        #expect(try open(try seal([4, 5], with: &toClient), with: &atClient) == [4, 5])
    }

    @Test func eachHandshakeDerivesDifferentKeys() throws {
        let key = try makeKey()
        var first = try handshake(clientKey: key, serverKey: key).client.clientSide().sealer
        var second = try handshake(clientKey: key, serverKey: key).client.clientSide().sealer
        #expect(try seal([0, 0, 0, 0], with: &first) != seal([0, 0, 0, 0], with: &second))
    }

    /// A key holder stamps its hello as it likes, and a clock may read anything: a stamp at either end of the
    /// clock, or 2^63 away from it, is refused with its skew, never a trap (which took every link down).
    @Test(arguments: [
        (sentAt: UInt64(0), now: UInt64(1_800_000_000_000)), (sentAt: .max, now: 1_800_000_000_000),
        (sentAt: 1_800_000_000_000 &+ (1 << 63), now: 1_800_000_000_000),
        (sentAt: 1_800_000_000_000 &- (1 << 63), now: 1_800_000_000_000),
        (sentAt: 1_800_000_000_000, now: 0), (sentAt: 1_800_000_000_000, now: .max), (sentAt: 0, now: .max),
        (sentAt: .max, now: 0), (sentAt: 1 << 63, now: 0),
    ])
    func authenticHelloStampedAtAnyDistanceIsRefusedWithItsSkew(sentAt: UInt64, now: UInt64) throws {
        let key = try makeKey()
        let expectedSkew =
            now >= sentAt
            ? Int64(clamping: (now - sentAt) / 1000) : -Int64(clamping: (sentAt - now) / 1000)
        let native = try ClientHandshake(key: key, nowMillis: sentAt)
        #expect(throws: CryptoError.clockSkew(seconds: expectedSkew)) {
            try ServerHandshake.verify(native.hello, keys: [key], nowMillis: now)
        }
        let hello = [UInt8](repeating: 0x16, count: 100)
        let random = [UInt8](repeating: 3, count: 32)
        let sessionID = try TLSClientHandshake(key: key).sessionID(
            authenticating: hello, random: random[...], nowMillis: sentAt)
        #expect(throws: CryptoError.clockSkew(seconds: expectedSkew)) {
            try TLSServerHandshake.open(
                sessionID: sessionID[...], random: random[...], hello: hello, keys: [key], nowMillis: now,
                notBefore: 0)
        }
    }

    /// PROTOCOL.md §3.1's derivation, computed here over the concatenation it names: hashing the pieces one by one
    /// (so the shared secret is never copied into a temporary) must give the same keys, or agents of this version
    /// could not talk to the last.
    @Test func sessionKeysAreBlake2bOfLabelSharedSecretAndTranscriptUnderTheSessionSubkey() throws {
        let key = try makeKey()
        let shared = (0..<32).map { UInt8($0 &* 7 &+ 1) }
        let transcript = (0..<700).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let keys = try SessionKeys(presharedKey: key, sharedSecret: shared, transcript: transcript)
        for (label, derived) in [
            (HandshakeMessage.sessionLabelClientToServer, keys.clientToServer),
            (HandshakeMessage.sessionLabelServerToClient, keys.serverToClient),
        ] {
            let message = label + shared + transcript
            var expected = [UInt8](repeating: 0, count: 32)
            key.sessionKey.withBytes { subkey in
                _ = crypto_generichash(&expected, 32, message, UInt64(message.count), subkey, 32)
            }
            #expect(derived.withBytes { Array(UnsafeBufferPointer(start: $0, count: 32)) } == expected)
        }
    }

    @Test func serverRejectsHelloMadeWithAnotherKey() throws {
        let client = try ClientHandshake(key: try makeKey(), nowMillis: now)
        #expect(throws: CryptoError.handshakeNotAuthentic) {
            try ServerHandshake.verify(client.hello, keys: [try makeKey()], nowMillis: now).respond()
        }
    }

    @Test func serverRejectsHelloOfTheEarlierProtocolVersionAsNotAuthentic() throws {
        let key = try makeKey()
        let publicKey = try EphemeralKeyPair().publicKey
        let fields = publicKey + withUnsafeBytes(of: now.bigEndian) { Array($0) }  // as protocol 3 sealed them
        let earlier = HandshakeMessage.sealHello(fields, key: key.clientHelloKey, associatedData: [])
        #expect(throws: CryptoError.handshakeNotAuthentic) {
            try ServerHandshake.verify(earlier, keys: [key], nowMillis: now).respond()
        }
    }

    @Test func clientRejectsReplyMadeWithAnotherKey() throws {
        let clientKey = try makeKey()
        let client = try ClientHandshake(key: clientKey, nowMillis: now)
        let otherServerKey = try makeKey()
        let impostor = try ClientHandshake(key: otherServerKey, nowMillis: now)
        let (reply, _) = try ServerHandshake.verify(impostor.hello, keys: [otherServerKey], nowMillis: now).respond()
        #expect(throws: CryptoError.handshakeNotAuthentic) { try client.receive(serverHello: reply) }
    }

    @Test func clientRejectsReplyToAnotherHello() throws {
        let key = try makeKey()
        let client = try ClientHandshake(key: key, nowMillis: now)
        let other = try ClientHandshake(key: key, nowMillis: now)
        let (reply, _) = try ServerHandshake.verify(other.hello, keys: [key], nowMillis: now).respond()
        #expect(throws: CryptoError.handshakeNotAuthentic) { try client.receive(serverHello: reply) }
    }

    @Test func clientReadsTheReplySizeFromItsHeader() throws {
        let key = try makeKey()
        let client = try ClientHandshake(key: key, nowMillis: now)
        let (reply, _) = try ServerHandshake.verify(client.hello, keys: [key], nowMillis: now).respond()
        let header = reply[..<HandshakeMessage.serverHeaderSize]
        #expect(try client.serverHelloSize(header: header) == reply.count)
    }

    @Test(arguments: [0, 1, HandshakeMessage.clientHeaderSize - 1])
    func helloShorterThanItsHeaderIsMalformed(size: Int) throws {
        let garbage = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        #expect(throws: CryptoError.handshakeMalformed) {
            try ServerHandshake.verify(garbage, keys: [try makeKey()], nowMillis: now).respond()
        }
    }

    @Test(arguments: [HandshakeMessage.clientHeaderSize, 200, HandshakeMessage.maximumClientHelloSize])
    func randomBytesAreNotAuthentic(size: Int) throws {
        let garbage = (0..<size).map { _ in UInt8.random(in: 0...255) }
        #expect(throws: CryptoError.handshakeNotAuthentic) {
            try ServerHandshake.verify(garbage, keys: [try makeKey()], nowMillis: now).respond()
        }
    }

    @Test(arguments: [0, 23, 24, 60, HandshakeMessage.clientHeaderSize - 1])
    func tamperedHelloHeaderIsNotAuthentic(at index: Int) throws {
        let key = try makeKey()
        var hello = try ClientHandshake(key: key, nowMillis: now).hello
        hello[index] ^= 0x80
        #expect(throws: CryptoError.handshakeNotAuthentic) {
            try ServerHandshake.verify(hello, keys: [key], nowMillis: now).respond()
        }
    }

    @Test func tamperedHelloPaddingMakesTheClientRejectTheReply() throws {
        let key = try makeKey()
        let client = try paddedClient(key: key)
        var tampered = client.hello
        tampered[tampered.count - 1] ^= 0x01
        let (reply, _) = try ServerHandshake.verify(tampered, keys: [key], nowMillis: now).respond()
        #expect(throws: CryptoError.handshakeNotAuthentic) { try client.receive(serverHello: reply) }
    }

    @Test func truncatedHelloIsMalformed() throws {
        let key = try makeKey()
        let client = try paddedClient(key: key)
        #expect(throws: CryptoError.handshakeMalformed) {
            try ServerHandshake.verify(Array(client.hello.dropLast()), keys: [key], nowMillis: now)
        }
    }

    @Test func helloFromFarOffClockIsRefused() throws {
        let key = try makeKey()
        let hello = try ClientHandshake(key: key, nowMillis: now - 600_000).hello
        #expect(throws: CryptoError.clockSkew(seconds: 600)) {
            try ServerHandshake.verify(hello, keys: [key], nowMillis: now).respond()
        }
    }

    @Test func helloWithinClockSkewIsAccepted() throws {
        let key = try makeKey()
        let hello = try ClientHandshake(key: key, nowMillis: now + 60_000).hello
        _ = try ServerHandshake.verify(hello, keys: [key], nowMillis: now).respond()
    }

    @Test func helloStampedBeforeTheServerStartedIsRefused() throws {
        let key = try makeKey()
        let hello = try ClientHandshake(key: key, nowMillis: now - 1).hello
        #expect(throws: CryptoError.sentBeforeStart) {
            try ServerHandshake.verify(hello, keys: [key], nowMillis: now + 5_000, notBefore: now)
        }
    }

    @Test func helloFromAClockBehindOursIsAcceptedOnceStampedAfterOurStart() throws {
        let key = try makeKey()
        // Our clock says `now`; the client's is 90 s behind; we started 100 s ago.
        let hello = try ClientHandshake(key: key, nowMillis: now - 90_000).hello
        _ = try ServerHandshake.verify(hello, keys: [key], nowMillis: now, notBefore: now - 100_000).respond()
    }

    @Test func helloSizesVaryOverHundredsOfValues() throws {
        let key = try makeKey()
        let sizes = try (0..<400).map { _ in try ClientHandshake(key: key, nowMillis: now).hello.count }
        #expect(Set(sizes).count > 200)
        #expect(
            sizes.allSatisfy {
                (HandshakeMessage.clientHeaderSize...HandshakeMessage.maximumClientHelloSize).contains($0)
            })
    }
}

@Suite struct KeyRotationTests {
    let now: UInt64 = 1_800_000_000_000

    @Test func serverHoldingTwoKeysAcceptsHellosMadeWithEither() throws {
        let old = try makeKey()
        let new = try makeKey()
        for key in [old, new] {
            let client = try ClientHandshake(key: key, nowMillis: now)
            let verified = try ServerHandshake.verify(client.hello, keys: [old, new], nowMillis: now)
            #expect(verified.keyFingerprint == key.fingerprint)
            _ = try client.receive(serverHello: try verified.respond().reply)
        }
    }

    @Test func serverHoldingTwoKeysRefusesAThird() throws {
        let hello = try ClientHandshake(key: try makeKey(), nowMillis: now).hello
        #expect(throws: CryptoError.handshakeNotAuthentic) {
            try ServerHandshake.verify(hello, keys: [try makeKey(), try makeKey()], nowMillis: now)
        }
    }
}
