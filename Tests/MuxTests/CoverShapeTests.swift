import Crypto
import Testing

@testable import Mux

/// A cover site's answer to a ClientHello, built field by field: a ServerHello record, an optional
/// ChangeCipherSpec, records a TLS 1.3 server would not send here, and the application-data records of its flight.
private struct CoverAnswer {
    static let helloRetryRandom = hexBytes("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

    var random: [UInt8]
    var sessionID: [UInt8]
    var cipherSuite: UInt16 = 0x1301
    /// The version in supported_versions; none sent when `nil`.
    var supportedVersion: UInt16? = 0x0304
    var group: UInt16 = BrowserClientHello.x25519Group
    var keySize = 32
    var sendsChangeCipherSpec = true
    /// Whole records sent between the ChangeCipherSpec and the flight.
    var strayRecords: [UInt8] = []
    var flightLengths = [36, 2_890, 264, 53]
    private var generator: SeededGenerator

    init(seed: UInt64) {
        generator = SeededGenerator(seed: seed)
        random = randomBytes(32, using: &generator)
        sessionID = randomBytes(32, using: &generator)
    }

    /// A cover that chose X25519MLKEM768, as Cloudflare and Google do.
    static func hybrid(seed: UInt64) -> CoverAnswer {
        var answer = CoverAnswer(seed: seed)
        answer.group = BrowserClientHello.hybridGroup
        answer.keySize = MLKEMCiphertext.size + 32
        return answer
    }

    var serverHello: [UInt8] {
        var generator = self.generator
        var extensions = TLSWriter()
        if let supportedVersion { extensions.append(0x002b, u16Length: TLSWriter.u16(supportedVersion)) }
        extensions.append(
            0x0033, u16Length: TLSWriter.u16(group) + TLSWriter.u16Length(randomBytes(keySize, using: &generator)))
        var body = TLSWriter()
        body.append([0x03, 0x03] + random + [UInt8(sessionID.count)] + sessionID + TLSWriter.u16(cipherSuite) + [0])
        body.append(u16Length: extensions.bytes)
        let message = [2] + TLSWriter.u24(body.bytes.count) + body.bytes
        return TLSRecord.header(.handshake, length: message.count) + message
    }

    var bytes: [UInt8] {
        var generator = self.generator
        var bytes = serverHello + (sendsChangeCipherSpec ? TLSRecord.changeCipherSpec : []) + strayRecords
        for length in flightLengths {
            bytes += TLSRecord.header(.applicationData, length: length) + randomBytes(length, using: &generator)
        }
        return bytes
    }
}

/// What a shape learned, as one comparable value.
private struct Learned: Equatable {
    let cipherSuite: UInt16
    let group: UInt16
    let sendsChangeCipherSpec: Bool
    let flightRecordLengths: [Int]
}

@Suite struct CoverShapeTests {
    let now: UInt64 = 1_800_000_000_000
    static let groups = [BrowserClientHello.x25519Group, BrowserClientHello.hybridGroup]

    private func cover(group: UInt16, seed: UInt64 = 1) -> CoverAnswer {
        group == BrowserClientHello.hybridGroup ? .hybrid(seed: seed) : CoverAnswer(seed: seed)
    }

    /// Each record in `bytes` as its type and payload length.
    private func recordSummaries(_ bytes: [UInt8]) -> [[Int]] {
        var summaries: [[Int]] = []
        var offset = 0
        while bytes.count - offset >= TLSRecord.headerSize {
            let header = TLSRecord.Header(bytes[offset...])
            summaries.append([Int(header.type), header.length])
            offset += TLSRecord.headerSize + header.length
        }
        return summaries
    }

    // MARK: Learning a cover's shape

    @Test func shapeLearnsSuiteGroupChangeCipherSpecAndRecordLengths() throws {
        var answer = CoverAnswer.hybrid(seed: 2)
        answer.cipherSuite = 0x1302
        answer.sendsChangeCipherSpec = false
        answer.flightLengths = [4_000, 69]
        let shape = try CoverShape(answer: answer.bytes)
        let learned = Learned(
            cipherSuite: shape.fields.cipherSuite, group: shape.fields.group,
            sendsChangeCipherSpec: shape.sendsChangeCipherSpec, flightRecordLengths: shape.flightRecordLengths)
        #expect(
            learned
                == Learned(
                    cipherSuite: 0x1302, group: 0x11ec, sendsChangeCipherSpec: false, flightRecordLengths: [4_000, 69]))
    }

    @Test func shapeLearnsThatAChangeCipherSpecFollows() throws {
        #expect(try CoverShape(answer: CoverAnswer(seed: 3).bytes).sendsChangeCipherSpec)
    }

    @Test func helloRetryRequestIsRefusedAsSuch() throws {
        var answer = CoverAnswer(seed: 4)
        answer.random = CoverAnswer.helloRetryRandom
        #expect(throws: CoverShape.Refusal.serverHello(.helloRetryRequest)) { try CoverShape(answer: answer.bytes) }
    }

    @Test(arguments: [nil, 0x0303] as [UInt16?])
    func serverHelloWithoutTLS13InSupportedVersionsIsNotTLS13(version: UInt16?) throws {
        var answer = CoverAnswer(seed: 5)
        answer.supportedVersion = version
        #expect(throws: CoverShape.Refusal.serverHello(.notTLS13)) { try CoverShape(answer: answer.bytes) }
    }

    @Test(arguments: [0, 16])
    func serverHelloEchoingASessionIDOfAnotherLengthIsRefused(length: Int) throws {
        var answer = CoverAnswer(seed: 7)
        answer.sessionID = [UInt8](repeating: 0x11, count: length)
        #expect(throws: CoverShape.Refusal.sessionIDNotEchoed) { try CoverShape(answer: answer.bytes) }
    }

    @Test func keyShareOfP256IsUnusable() throws {
        var answer = CoverAnswer(seed: 6)
        answer.group = 0x0017
        answer.keySize = 65
        #expect(throws: CoverShape.Refusal.serverHello(.unusableKeyShare)) { try CoverShape(answer: answer.bytes) }
    }

    @Test func answerWithoutApplicationDataHasNoEncryptedFlight() throws {
        var answer = CoverAnswer(seed: 7)
        answer.flightLengths = []
        #expect(throws: CoverShape.Refusal.noEncryptedFlight) { try CoverShape(answer: answer.bytes) }
    }

    @Test func firstFlightRecordShorterThanAFlightHeaderHasNoEncryptedFlight() throws {
        var answer = CoverAnswer(seed: 8)
        answer.flightLengths = [TLSHelloAuthentication.flightHeaderSize - 1, 2_000]
        #expect(throws: CoverShape.Refusal.noEncryptedFlight) { try CoverShape(answer: answer.bytes) }
    }

    @Test func flightLongerThanAHeaderCanAnnounceHasNoEncryptedFlight() throws {
        var answer = CoverAnswer(seed: 23)
        answer.flightLengths = [36] + Array(repeating: 16_401, count: 4)  // 65,624 bytes after the first record
        #expect(throws: CoverShape.Refusal.noEncryptedFlight) { try CoverShape(answer: answer.bytes) }
    }

    @Test func handshakeRecordAfterTheServerHelloIsUnexpected() throws {
        var answer = CoverAnswer(seed: 9)
        answer.strayRecords = TLSRecord.header(.handshake, length: 4) + [11, 0, 0, 0]
        #expect(throws: CoverShape.Refusal.unexpectedRecords) { try CoverShape(answer: answer.bytes) }
    }

    // MARK: Answering in the cover's shape

    @Test(arguments: groups)
    func ourServerHelloParsesWithTheCoversFields(group: UInt16) throws {
        let shape = try CoverShape(answer: cover(group: group).bytes)
        var generator = SeededGenerator(seed: 10)
        let ours = shape.serverHello(
            random: randomBytes(32, using: &generator), sessionID: randomBytes(32, using: &generator)[...],
            serverShare: randomBytes(32, using: &generator), using: &generator)
        #expect(try ServerHelloFields(record: ours) == shape.fields)
    }

    @Test func ourServerHelloCarriesTheGivenRandomSessionIDAndShare() throws {
        let shape = try CoverShape(answer: CoverAnswer(seed: 11).bytes)
        var generator = SeededGenerator(seed: 12)
        let (random, sessionID, share) = (
            randomBytes(32, using: &generator), randomBytes(32, using: &generator), randomBytes(32, using: &generator)
        )
        let ours = shape.serverHello(random: random, sessionID: sessionID[...], serverShare: share, using: &generator)
        let fields = try ServerHelloFields(record: ours)
        #expect(
            [ours[fields.randomRange], ours[fields.sessionIDRange], ours[fields.keyExchangeRange]].map(Array.init)
                == [random, sessionID, share])
    }

    @Test func hybridServerHelloCarriesARandomCiphertextThenTheShare() throws {
        let shape = try CoverShape(answer: CoverAnswer.hybrid(seed: 13).bytes)
        let share = [UInt8](repeating: 0x5A, count: 32)
        var generator = SeededGenerator(seed: 14)
        var replay = generator
        let ours = shape.serverHello(
            random: [UInt8](repeating: 1, count: 32), sessionID: [UInt8](repeating: 2, count: 32)[...],
            serverShare: share, using: &generator)
        let fields = try ServerHelloFields(record: ours)
        #expect(Array(ours[fields.keyExchangeRange]) == randomBytes(MLKEMCiphertext.size, using: &replay) + share)
    }

    @Test func flightHasTheCoversRecordLengths() throws {
        let answer = CoverAnswer(seed: 15)
        let shape = try CoverShape(answer: answer.bytes)
        var generator = SeededGenerator(seed: 16)
        let flight = shape.flight(
            header: randomBytes(TLSHelloAuthentication.flightHeaderSize, using: &generator), using: &generator)
        let changeCipherSpec = [Int(TLSRecord.ContentType.changeCipherSpec.rawValue), 1]
        let applicationData = Int(TLSRecord.ContentType.applicationData.rawValue)
        #expect(recordSummaries(flight) == [changeCipherSpec] + answer.flightLengths.map { [applicationData, $0] })
    }

    @Test func flightStartsWithTheHeader() throws {
        let shape = try CoverShape(answer: CoverAnswer(seed: 17).bytes)
        var generator = SeededGenerator(seed: 18)
        let header = randomBytes(TLSHelloAuthentication.flightHeaderSize, using: &generator)
        let flight = shape.flight(header: header, using: &generator)
        let start = TLSRecord.changeCipherSpec.count + TLSRecord.headerSize
        #expect(Array(flight[start..<start + header.count]) == header)
    }

    @Test func flightRemainderCountsTheBytesAfterTheFirstRecord() throws {
        let answer = CoverAnswer(seed: 19)
        let shape = try CoverShape(answer: answer.bytes)
        var generator = SeededGenerator(seed: 20)
        let flight = shape.flight(
            header: randomBytes(TLSHelloAuthentication.flightHeaderSize, using: &generator), using: &generator)
        let firstRecordEnd = TLSRecord.changeCipherSpec.count + TLSRecord.headerSize + answer.flightLengths[0]
        #expect(shape.flightRemainder == flight.count - firstRecordEnd)
    }

    // MARK: End to end with real keys

    /// Both sides of a TLS-transport handshake answered in the shape of a cover that chose `group`.
    private struct Exchange {
        let client: TLSClientHandshake
        let shape: CoverShape
        let hello: [UInt8]
        let serverHello: [UInt8]
        let flight: [UInt8]
        let serverKeys: SessionKeys
    }

    private func exchange(group: UInt16) throws -> Exchange {
        let key = try PreSharedKey(base64: PreSharedKey.generateBase64(), source: "test")
        var generator = SeededGenerator(seed: 21)
        let client = try TLSClientHandshake(key: key)
        var browser = BrowserClientHello(
            serverName: "cover.example", x25519Share: client.x25519Share, hybridX25519Share: client.hybridX25519Share,
            echKey: try TLSHelloAuthentication.unusedX25519PublicKey(), using: &generator)
        let clientRandom = randomBytes(32, using: &generator)
        browser.fill(random: clientRandom)
        browser.fill(
            sessionID: client.sessionID(authenticating: browser.bytes, random: clientRandom[...], nowMillis: now))
        let hello = browser.bytes
        let fields = try #require(ClientHelloFields(record: hello))
        let verified = try TLSServerHandshake.open(
            sessionID: hello[fields.sessionIDRange], random: hello[fields.randomRange],
            hello: fields.recordWithoutSessionID, keys: [key], nowMillis: now, notBefore: 0)

        let shape = try CoverShape(answer: cover(group: group, seed: 22).bytes)
        let share = try #require(shape.fields.isHybrid ? fields.hybridX25519Share : fields.x25519Share)
        let response = try verified.respond(to: hello[share])
        let serverRandom = randomBytes(32, using: &generator)
        let serverHello = shape.serverHello(
            random: serverRandom, sessionID: hello[fields.sessionIDRange], serverShare: response.serverShare,
            using: &generator)
        let header = response.flightHeader(
            serverRandom: serverRandom[...], transcript: hello + serverHello, remainder: shape.flightRemainder)
        let flight = shape.flight(header: header, using: &generator)
        let serverKeys = try response.sessionKeys(transcript: hello + serverHello + flight)
        return Exchange(
            client: client, shape: shape, hello: hello, serverHello: serverHello, flight: flight, serverKeys: serverKeys
        )
    }

    private func sealed(_ plaintext: [UInt8], with sealer: inout FrameSealer) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: plaintext.count + SealedFrame.overhead)
        try plaintext.withUnsafeBytes { raw in
            try output.withUnsafeMutableBytes { out in try sealer.seal(raw, into: out.baseAddress!) }
        }
        return output
    }

    private func opened(_ sealed: [UInt8], with opener: inout FrameOpener) throws -> [UInt8] {
        let length = try sealed.withUnsafeBytes { raw in
            try opener.openLength(UnsafeRawBufferPointer(rebasing: raw[..<SealedFrame.lengthBlockSize]))
        }
        let body = Array(sealed[SealedFrame.lengthBlockSize...])
        var plaintext = [UInt8](repeating: 0, count: length)
        try body.withUnsafeBytes { raw in
            try plaintext.withUnsafeMutableBytes { out in try opener.openBody(raw, into: out.baseAddress!) }
        }
        return plaintext
    }

    @Test(arguments: groups)
    func clientOpensTheHeaderOfOurFlight(group: UInt16) throws {
        let exchange = try exchange(group: group)
        let fields = try ServerHelloFields(record: exchange.serverHello)
        let start = TLSRecord.changeCipherSpec.count + TLSRecord.headerSize
        let remainder = try exchange.client.flightRemainder(
            header: exchange.flight[start..<start + TLSHelloAuthentication.flightHeaderSize],
            serverRandom: exchange.serverHello[fields.randomRange], transcript: exchange.hello + exchange.serverHello)
        #expect(remainder == exchange.shape.flightRemainder)
    }

    @Test(arguments: groups)
    func bothSidesDeriveMatchingSessionKeys(group: UInt16) throws {
        let exchange = try exchange(group: group)
        let fields = try ServerHelloFields(record: exchange.serverHello)
        let clientKeys = try exchange.client.sessionKeys(
            serverShare: exchange.serverHello[fields.x25519Range], usingHybridShare: fields.isHybrid,
            transcript: exchange.hello + exchange.serverHello + exchange.flight)
        var toServer = clientKeys.clientSide().sealer
        var atServer = exchange.serverKeys.serverSide().opener
        var toClient = exchange.serverKeys.serverSide().sealer
        var atClient = clientKeys.clientSide().opener
        #expect(try opened(try sealed([1, 2, 3], with: &toServer), with: &atServer) == [1, 2, 3])
        #expect(try opened(try sealed([4, 5], with: &toClient), with: &atClient) == [4, 5])
    }
}
