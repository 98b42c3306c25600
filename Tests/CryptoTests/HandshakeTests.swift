import Crypto
import Testing

@Suite struct HandshakeTests {
    let now: UInt64 = 1_800_000_000

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

    @Test func serverRejectsHelloMadeWithAnotherKey() throws {
        let client = try ClientHandshake(key: try makeKey(), now: now)
        #expect(throws: CryptoError.handshakeNotAuthentic) {
            try ServerHandshake.verify(client.hello, keys: [try makeKey()], now: now).respond()
        }
    }

    @Test func clientRejectsReplyMadeWithAnotherKey() throws {
        let clientKey = try makeKey()
        let client = try ClientHandshake(key: clientKey, now: now)
        let otherServerKey = try makeKey()
        let impostor = try ClientHandshake(key: otherServerKey, now: now)
        let (reply, _) = try ServerHandshake.verify(impostor.hello, keys: [otherServerKey], now: now).respond()
        #expect(throws: CryptoError.handshakeNotAuthentic) { try client.receive(serverHello: reply) }
    }

    @Test func clientRejectsReplyToAnotherHello() throws {
        let key = try makeKey()
        let client = try ClientHandshake(key: key, now: now)
        let other = try ClientHandshake(key: key, now: now)
        let (reply, _) = try ServerHandshake.verify(other.hello, keys: [key], now: now).respond()
        #expect(throws: CryptoError.handshakeNotAuthentic) { try client.receive(serverHello: reply) }
    }

    @Test(arguments: [0, 1, 71, 73, 200])
    func helloOfWrongSizeIsMalformed(size: Int) throws {
        let garbage = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        #expect(throws: CryptoError.handshakeMalformed) {
            try ServerHandshake.verify(garbage, keys: [try makeKey()], now: now).respond()
        }
    }

    @Test func randomHelloOfRightSizeIsNotAuthentic() throws {
        let garbage = (0..<HandshakeMessage.clientHelloSize).map { _ in UInt8.random(in: 0...255) }
        #expect(throws: CryptoError.handshakeNotAuthentic) {
            try ServerHandshake.verify(garbage, keys: [try makeKey()], now: now).respond()
        }
    }

    @Test(arguments: [0, 10, 40, 71])
    func tamperedHelloIsNotAuthentic(at index: Int) throws {
        let key = try makeKey()
        var hello = try ClientHandshake(key: key, now: now).hello
        hello[index] ^= 0x80
        #expect(throws: CryptoError.handshakeNotAuthentic) {
            try ServerHandshake.verify(hello, keys: [key], now: now).respond()
        }
    }

    @Test func helloFromFarOffClockIsRefused() throws {
        let key = try makeKey()
        let hello = try ClientHandshake(key: key, now: now - 600).hello
        #expect(throws: CryptoError.clockSkew(seconds: 600)) {
            try ServerHandshake.verify(hello, keys: [key], now: now).respond()
        }
    }

    @Test func helloWithinClockSkewIsAccepted() throws {
        let key = try makeKey()
        let hello = try ClientHandshake(key: key, now: now + 60).hello
        _ = try ServerHandshake.verify(hello, keys: [key], now: now).respond()
    }
}

@Suite struct KeyRotationTests {
    let now: UInt64 = 1_800_000_000

    @Test func serverHoldingTwoKeysAcceptsHellosMadeWithEither() throws {
        let old = try makeKey()
        let new = try makeKey()
        for key in [old, new] {
            let client = try ClientHandshake(key: key, now: now)
            let verified = try ServerHandshake.verify(client.hello, keys: [old, new], now: now)
            #expect(verified.keyFingerprint == key.fingerprint)
            _ = try client.receive(serverHello: try verified.respond().reply)
        }
    }

    @Test func serverHoldingTwoKeysRefusesAThird() throws {
        let hello = try ClientHandshake(key: try makeKey(), now: now).hello
        #expect(throws: CryptoError.handshakeNotAuthentic) {
            try ServerHandshake.verify(hello, keys: [try makeKey(), try makeKey()], now: now)
        }
    }
}
