import Testing

@testable import Crypto

/// The TLS transport's authentication, on stand-in hellos: any bytes stand for a ClientHello record with its
/// session id zeroed, since the crypto binds them whole and reads nothing in them.
@Suite struct TLSHandshakeTests {
    let now: UInt64 = 1_800_000_000_000
    let hello = (0..<1900).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    let random = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }

    private func verify(_ sessionID: [UInt8], hello: [UInt8]? = nil, keys: [PreSharedKey], nowMillis: UInt64? = nil)
        throws -> TLSVerifiedHello
    {
        try TLSServerHandshake.open(
            sessionID: sessionID[...], random: random[...], hello: hello ?? self.hello, keys: keys,
            nowMillis: nowMillis ?? now, notBefore: 0)
    }

    @Test func sessionIDMadeWithTheKeyOpensAndCarriesItsStamp() throws {
        let key = try makeKey()
        let client = try TLSClientHandshake(key: key)
        let sessionID = client.sessionID(authenticating: hello, random: random[...], nowMillis: now)
        #expect(sessionID.count == TLSHelloAuthentication.sessionIDSize)
        let verified = try verify(sessionID, keys: [key])
        #expect(verified.identity.sentAt == now)
        #expect(verified.identity.tag == Array(sessionID.suffix(16)))
    }

    @Test(arguments: [0, 43, 500, 1_250, 1_899])
    func anyChangeToTheHelloBreaksItsSessionID(at index: Int) throws {
        let key = try makeKey()
        let sessionID = try TLSClientHandshake(key: key).sessionID(
            authenticating: hello, random: random[...], nowMillis: now)
        var altered = hello
        altered[index] ^= 0x01
        #expect(throws: CryptoError.handshakeNotAuthentic) { try verify(sessionID, hello: altered, keys: [key]) }
    }

    @Test func sessionIDMadeWithAnotherKeyIsNotAuthentic() throws {
        let sessionID = try TLSClientHandshake(key: try makeKey()).sessionID(
            authenticating: hello, random: random[...], nowMillis: now)
        #expect(throws: CryptoError.handshakeNotAuthentic) { try verify(sessionID, keys: [try makeKey()]) }
    }

    @Test func sessionIDStampedTenMinutesAgoIsRefused() throws {
        let key = try makeKey()
        let sessionID = try TLSClientHandshake(key: key).sessionID(
            authenticating: hello, random: random[...], nowMillis: now - 600_000)
        #expect(throws: CryptoError.clockSkew(seconds: 600)) { try verify(sessionID, keys: [key]) }
    }

    @Test func stampsAtTheEndsOfTheClockAreRefusedWithoutATrap() throws {
        for sentAt in [UInt64(0), 1 << 63, now &+ (1 << 63), .max] {
            #expect(throws: CryptoError.self) {
                try ServerHandshake.checkStamp(sentAt, nowMillis: now, notBefore: 0)
            }
        }
        #expect(throws: CryptoError.clockSkew(seconds: -121)) {
            try ServerHandshake.checkStamp(now + 121_000, nowMillis: now, notBefore: 0)
        }
    }

    @Test(arguments: [false, true])
    func bothSidesDeriveTheSameKeysOverEitherShare(hybrid: Bool) throws {
        let key = try makeKey()
        let client = try TLSClientHandshake(key: key)
        let sessionID = client.sessionID(authenticating: hello, random: random[...], nowMillis: now)
        let verified = try verify(sessionID, keys: [key])
        let clientShare = hybrid ? client.hybridX25519Share : client.x25519Share
        let response = try verified.respond(to: clientShare[...])
        let serverHello = [UInt8](repeating: 2, count: 90) + response.serverShare
        let serverRandom = [UInt8](repeating: 9, count: 32)
        let header = response.flightHeader(
            serverRandom: serverRandom[...], transcript: hello + serverHello, remainder: 2_345)
        #expect(header.count == TLSHelloAuthentication.flightHeaderSize)
        let remainder = try client.flightRemainder(
            header: header[...], serverRandom: serverRandom[...], transcript: hello + serverHello)
        #expect(remainder == 2_345)
        let transcript = hello + serverHello + header + [UInt8](repeating: 4, count: 2_345)
        let serverKeys = try response.sessionKeys(transcript: transcript)
        let clientKeys = try client.sessionKeys(
            serverShare: response.serverShare[...], usingHybridShare: hybrid, transcript: transcript)
        var sealer = clientKeys.clientSide().sealer
        var opener = serverKeys.serverSide().opener
        #expect(try open(try seal([1, 2, 3], with: &sealer), with: &opener) == [1, 2, 3])
    }

    @Test func theOtherShareGivesOtherKeys() throws {
        let key = try makeKey()
        let client = try TLSClientHandshake(key: key)
        let sessionID = client.sessionID(authenticating: hello, random: random[...], nowMillis: now)
        let response = try verify(sessionID, keys: [key]).respond(to: client.x25519Share[...])
        let serverKeys = try response.sessionKeys(transcript: hello)
        let clientKeys = try client.sessionKeys(
            serverShare: response.serverShare[...], usingHybridShare: true, transcript: hello)
        var sealer = clientKeys.clientSide().sealer
        var opener = serverKeys.serverSide().opener
        #expect(throws: CryptoError.forged) { try open(try seal([1], with: &sealer), with: &opener) }
    }

    @Test func flightHeaderBoundToAnotherTranscriptIsNotAuthentic() throws {
        let key = try makeKey()
        let client = try TLSClientHandshake(key: key)
        let sessionID = client.sessionID(authenticating: hello, random: random[...], nowMillis: now)
        let response = try verify(sessionID, keys: [key]).respond(to: client.x25519Share[...])
        let serverRandom = [UInt8](repeating: 9, count: 32)
        let header = response.flightHeader(serverRandom: serverRandom[...], transcript: hello + [1], remainder: 10)
        #expect(throws: CryptoError.handshakeNotAuthentic) {
            try client.flightRemainder(header: header[...], serverRandom: serverRandom[...], transcript: hello + [2])
        }
    }

    @Test func aCoverSitesRandomFlightIsNotAuthentic() throws {
        let client = try TLSClientHandshake(key: try makeKey())
        let flight = (0..<TLSHelloAuthentication.flightHeaderSize).map { UInt8(truncatingIfNeeded: $0 &* 77) }
        #expect(throws: CryptoError.handshakeNotAuthentic) {
            try client.flightRemainder(header: flight[...], serverRandom: random[...], transcript: hello)
        }
    }
}
