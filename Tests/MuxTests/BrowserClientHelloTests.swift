import Crypto
import Foundation
import Testing

@testable import Mux

/// Our rebuilt Chromium 156 ClientHello against the browser's own, captured by scripts/capture-browser-hello in
/// Tests/EndToEndTests/Fixtures/chromium-client-hellos.txt, read with a parser of this file's own; and
/// ClientHelloFields reading both.
@Suite struct BrowserClientHelloTests {
    private static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../EndToEndTests/Fixtures/chromium-client-hellos.txt").standardized

    /// The name scripts/capture-browser-hello points the browser at.
    private static let coverName = "cover.example"

    /// The browser's cipher suites after its GREASE one.
    private static let browserCipherSuites: [UInt16] = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d,
        0x002f, 0x0035,
    ]

    /// Extensions whose data is the same in every hello the browser sends to one name.
    private static let staticExtensions: Set<UInt16> = [
        0x001b, 0x0005, 0x000b, 0x0010, 0x44cd, 0xff01, 0x0017, 0x0012, 0x0023, 0x002d, 0xca34, 0x0000,
    ]

    /// The browser's signature algorithms after its GREASE one.
    private static let browserSignatureAlgorithms: [UInt16] = [
        0x0904, 0x0905, 0x0906, 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ]

    /// The browser's GREASE encrypted_client_hello payload sizes (BoringSSL: 128 + 32n bytes, n < 4, plus the tag).
    private static let echPayloadSizes: Set<Int> = [144, 176, 208, 240]

    // MARK: Helpers

    private struct Shares {
        let x25519: [UInt8]
        let hybrid: [UInt8]
        let ech: [UInt8]
    }

    private func makeShares() throws -> Shares {
        Shares(
            x25519: try TLSHelloAuthentication.unusedX25519PublicKey(),
            hybrid: try TLSHelloAuthentication.unusedX25519PublicKey(),
            ech: try TLSHelloAuthentication.unusedX25519PublicKey())
    }

    private func makeHello(
        _ shares: Shares, serverName: String? = coverName, using generator: inout SeededGenerator
    ) -> BrowserClientHello {
        BrowserClientHello(
            serverName: serverName, x25519Share: shares.x25519, hybridX25519Share: shares.hybrid, echKey: shares.ech,
            using: &generator)
    }

    /// One hello to cover.example from a fixed seed.
    private func makeHello(_ shares: Shares, seed: UInt64 = 1) -> BrowserClientHello {
        var generator = SeededGenerator(seed: seed)
        return makeHello(shares, using: &generator)
    }

    /// The browser's hello records, in the fixture's order.
    private func browserRecords() throws -> [[UInt8]] {
        let text = try String(contentsOf: Self.fixture, encoding: .utf8)
        let records = try text.split(separator: "\n").filter { !$0.hasPrefix("# ") && !$0.isEmpty }.map(decodeHex)
        try #require(!records.isEmpty, "the fixture holds no hello")
        return records
    }

    private func browserHellos() throws -> [ParsedHello] {
        try browserRecords().map(ParsedHello.init)
    }

    /// JA3 with GREASE dropped and the extension types sorted, so that it is the same for every hello of one
    /// browser whatever order it shuffles its extensions into.
    private func normalizedJA3(_ hello: ParsedHello) -> String {
        func joined(_ values: [some BinaryInteger]) -> String { values.map { "\($0)" }.joined(separator: "-") }
        return [
            "\(hello.handshakeVersion)", joined(hello.cipherSuites.filter { !isGrease($0) }),
            joined(hello.extensions.map(\.type).filter { !isGrease($0) }.sorted()),
            joined(hello.supportedGroups.filter { !isGrease($0) }), joined(hello.ecPointFormats),
        ].joined(separator: ",")
    }

    /// An extension's structure and lengths, its random parts left out and GREASE written as -1.
    private func shape(of type: UInt16, _ data: [UInt8]) throws -> [Int] {
        func values(_ list: [UInt16]) -> [Int] { list.map { isGrease($0) ? -1 : Int($0) } }
        switch type {
        case 0x002b: return [data.count] + values(try ParsedHello.u16List(data, lengthBytes: 1))
        case 0x000a, 0x000d: return [data.count] + values(try ParsedHello.u16List(data, lengthBytes: 2))
        case 0x0033:
            return [data.count]
                + (try ParsedHello.keyShares(data)).flatMap { values([$0.group]) + [$0.key.count] }
        case 0xfe0d:
            let ech = try ParsedHello.ECHOuter(data)
            return [ech.type, ech.kdf, ech.aead, ech.enc.count]
        default: throw MalformedHello()
        }
    }

    // MARK: Tests

    @Test func normalizedJA3IsEveryBrowserHellos() throws {
        let ours = normalizedJA3(try ParsedHello(makeHello(makeShares()).bytes))
        for browser in try browserHellos() {
            #expect(ours == normalizedJA3(browser))
        }
    }

    @Test func everyExtensionHoldsTheBrowsersDataApartFromItsRandomParts() throws {
        let ours = try ParsedHello(makeHello(makeShares()).bytes)
        #expect(isGrease(try #require(ours.supportedVersions.first)))
        #expect(Array(ours.supportedVersions.dropFirst()) == [0x0304, 0x0303])
        #expect(isGrease(try #require(ours.supportedGroups.first)))
        #expect(Array(ours.supportedGroups.dropFirst()) == [0x11ec, 0x001d, 0x0017, 0x0018])
        #expect(isGrease(try #require(ours.signatureAlgorithms.first)))
        #expect(Array(ours.signatureAlgorithms.dropFirst()) == Self.browserSignatureAlgorithms)
        #expect(
            ours.keyShares.map { isGrease($0.group) ? [-1, $0.key.count] : [Int($0.group), $0.key.count] }
                == [[-1, 1], [0x11ec, 1216], [0x001d, 32]])
        let ech = try ParsedHello.ECHOuter(#require(ours.data(of: 0xfe0d)))
        let echPrefix: [Int] = [ech.type, ech.kdf, ech.aead, ech.enc.count]
        #expect(echPrefix == [0, 0x0001, 0x0001, 32])
        #expect(ours.alpn == ["h2", "http/1.1"])
        #expect(Set(ours.extensions.map(\.type).filter { !isGrease($0) }).count == 17)
        for browser in try browserHellos() {
            for (type, browserData) in browser.extensions where !isGrease(type) {
                let ourData = try #require(ours.data(of: type), "no extension \(hex(type))")
                if Self.staticExtensions.contains(type) {
                    #expect(ourData == browserData, "extension \(hex(type))")
                } else {
                    #expect(try shape(of: type, ourData) == shape(of: type, browserData), "extension \(hex(type))")
                }
            }
        }
    }

    @Test func cipherSuitesVersionsAndSessionIDAreTheBrowsers() throws {
        let ours = try ParsedHello(makeHello(makeShares()).bytes)
        #expect(isGrease(try #require(ours.cipherSuites.first)))
        #expect(Array(ours.cipherSuites.dropFirst()) == Self.browserCipherSuites)
        #expect(ours.recordVersion == 0x0301)
        #expect(ours.handshakeVersion == 0x0303)
        #expect(ours.sessionIDLength == 32)
        #expect(ours.compressionMethods == [0])
        for browser in try browserHellos() {
            #expect(Array(browser.cipherSuites.dropFirst()) == Array(ours.cipherSuites.dropFirst()))
            #expect(browser.recordVersion == ours.recordVersion && browser.handshakeVersion == ours.handshakeVersion)
        }
    }

    @Test func greaseExtensionsOpenAndCloseTheListAndGreaseGroupsAgree() throws {
        let shares = try makeShares()
        var generator = SeededGenerator(seed: 2)
        for _ in 0..<200 {
            let hello = try ParsedHello(makeHello(shares, using: &generator).bytes)
            let first = try #require(hello.extensions.first)
            let last = try #require(hello.extensions.last)
            #expect(isGrease(first.type) && first.data.isEmpty)
            #expect(isGrease(last.type) && last.data == [0])
            #expect(first.type != last.type)
            let greaseShare = try #require(hello.keyShares.first)
            #expect(isGrease(greaseShare.group) && greaseShare.group == hello.supportedGroups.first)
        }
    }

    @Test func otherExtensionsComeInManyOrders() throws {
        let shares = try makeShares()
        var generator = SeededGenerator(seed: 3)
        var orders: Set<[UInt16]> = []
        for _ in 0..<50 {
            let hello = try ParsedHello(makeHello(shares, using: &generator).bytes)
            orders.insert(hello.extensions.dropFirst().dropLast().map(\.type))
        }
        #expect(orders.count >= 40)
    }

    @Test func echPayloadTakesOnlyTheBrowsersFourSizes() throws {
        let shares = try makeShares()
        var generator = SeededGenerator(seed: 4)
        var payloads: Set<Int> = []
        var lengths: Set<Int> = []
        for _ in 0..<200 {
            let hello = try ParsedHello(makeHello(shares, using: &generator).bytes)
            payloads.insert(try ParsedHello.ECHOuter(#require(hello.data(of: 0xfe0d))).payload.count)
            lengths.insert(try #require(hello.echLength))
        }
        #expect(payloads == Self.echPayloadSizes)
        #expect(lengths == [186, 218, 250, 282])
        for browser in try browserHellos() {
            #expect(lengths.contains(try #require(browser.echLength)))
        }
    }

    @Test func hybridShareIsAWellFormedMLKEMKeyThenTheGivenX25519Share() throws {
        let shares = try makeShares()
        var generator = SeededGenerator(seed: 5)
        for _ in 0..<20 {
            let hello = try ParsedHello(makeHello(shares, using: &generator).bytes)
            let hybrid = try #require(hello.keyShares.first { $0.group == 0x11ec }?.key)
            #expect(hybrid.count == MLKEMEncapsulationKey.size + 32)
            #expect(mlkemCoefficients(hybrid).allSatisfy { $0 < 3329 })
            #expect(Array(hybrid.suffix(32)) == shares.hybrid)
            #expect(hello.keyShares.first { $0.group == 0x001d }?.key == shares.x25519)
        }
        // The decoding is FIPS 203's: the browser's real keys pass it too.
        for browser in try browserHellos() {
            let hybrid = try #require(browser.keyShares.first { $0.group == 0x11ec }?.key)
            #expect(mlkemCoefficients(hybrid).allSatisfy { $0 < 3329 })
        }
    }

    @Test func randomAndSessionIDHoldZerosUntilFilled() throws {
        var hello = makeHello(try makeShares())
        #expect(hello.randomRange == 11..<43)
        #expect(hello.sessionIDRange == 44..<76)
        #expect(hello.bytes[hello.randomRange].allSatisfy { $0 == 0 })
        #expect(hello.bytes[hello.sessionIDRange].allSatisfy { $0 == 0 })
        let before = hello.bytes
        let random = [UInt8](repeating: 0x5a, count: 32)
        let sessionID = [UInt8](repeating: 0xa5, count: 32)
        hello.fill(random: random, sessionID: sessionID)
        let changed = Set(before.indices.filter { before[$0] != hello.bytes[$0] })
        #expect(changed == Set(hello.randomRange).union(hello.sessionIDRange))
        #expect(Array(hello.bytes[hello.randomRange]) == random)
        #expect(Array(hello.bytes[hello.sessionIDRange]) == sessionID)
    }

    @Test func fieldsReadBackFromOurHello() throws {
        let shares = try makeShares()
        var hello = makeHello(shares)
        hello.fill(random: [UInt8](repeating: 0x5a, count: 32), sessionID: [UInt8](repeating: 0xa5, count: 32))
        let fields = try #require(ClientHelloFields(record: hello.bytes))
        #expect(fields.randomRange == hello.randomRange)
        #expect(fields.sessionIDRange == hello.sessionIDRange)
        #expect(try Array(hello.bytes[#require(fields.x25519Share)]) == shares.x25519)
        #expect(try Array(hello.bytes[#require(fields.hybridX25519Share)]) == shares.hybrid)
        #expect(fields.serverName == Self.coverName)
    }

    @Test func fieldsReadBackFromEveryBrowserHello() throws {
        for record in try browserRecords() {
            let fields = try #require(ClientHelloFields(record: record))
            let hybrid = try #require(ParsedHello(record).keyShares.first { $0.group == 0x11ec }?.key)
            #expect(try Array(record[#require(fields.hybridX25519Share)]) == Array(hybrid.suffix(32)))
            #expect(fields.serverName == Self.coverName)
        }
    }

    @Test func fieldsRejectEveryTruncation() throws {
        let bytes = makeHello(try makeShares()).bytes
        let accepted = (0..<bytes.count).filter { ClientHelloFields(record: Array(bytes.prefix($0))) != nil }
        #expect(accepted.isEmpty)
    }

    /// The record's u16 length (bytes 3-4) and the handshake message's u24 length (bytes 6-8).
    @Test(arguments: [3, 4, 6, 7, 8])
    func fieldsRejectAChangedLengthByte(at index: Int) throws {
        var bytes = makeHello(try makeShares()).bytes
        #expect(ClientHelloFields(record: bytes) != nil)
        bytes[index] ^= 0x01
        #expect(ClientHelloFields(record: bytes) == nil)
    }

    @Test func helloWithoutServerNameHasTheBrowsersOtherSixteenExtensions() throws {
        let shares = try makeShares()
        var generator = SeededGenerator(seed: 6)
        let ours = try ParsedHello(makeHello(shares, serverName: nil, using: &generator).bytes)
        let ourTypes = ours.extensions.map(\.type).filter { !isGrease($0) }
        #expect(!ourTypes.contains(0x0000))
        #expect(ourTypes.count == 16)
        for browser in try browserHellos() {
            let browserTypes = Set(browser.extensions.map(\.type).filter { !isGrease($0) })
            #expect(Set(ourTypes) == browserTypes.subtracting([0x0000]))
        }
    }
}

// MARK: An independent ClientHello parser

/// A GREASE value (RFC 8701): 0x?a?a with its two bytes equal.
private func isGrease(_ value: UInt16) -> Bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

private func hex(_ value: UInt16) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 4 - digits.count) + digits
}

private func decodeHex(_ line: Substring) throws -> [UInt8] {
    let digits = try line.utf8.map { character -> UInt8 in
        guard let digit = UInt8(String(UnicodeScalar(character)), radix: 16) else { throw MalformedHello() }
        return digit
    }
    guard digits.count % 2 == 0 else { throw MalformedHello() }
    return stride(from: 0, to: digits.count, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
}

/// The 768 twelve-bit coefficients of an ML-KEM-768 encapsulation key's first 1,152 bytes (FIPS 203 ByteDecode₁₂).
private func mlkemCoefficients(_ key: [UInt8]) -> [UInt16] {
    stride(from: 0, to: 1152, by: 3).flatMap { index -> [UInt16] in
        let (b0, b1, b2) = (UInt16(key[index]), UInt16(key[index + 1]), UInt16(key[index + 2]))
        return [b0 | (b1 & 0x0f) << 8, b1 >> 4 | b2 << 4]
    }
}

private struct MalformedHello: Error {}

/// Reads big-endian integers and length-prefixed vectors, throwing past the end.
private struct Cursor {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { position == bytes.count }

    mutating func take(_ count: Int) throws -> [UInt8] {
        guard count <= bytes.count - position else { throw MalformedHello() }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    mutating func integer(_ size: Int) throws -> Int {
        try take(size).reduce(0) { $0 << 8 | Int($1) }
    }

    mutating func u16() throws -> UInt16 { UInt16(try integer(2)) }

    mutating func vector(lengthBytes: Int) throws -> [UInt8] {
        try take(integer(lengthBytes))
    }

    func end() throws {
        guard isAtEnd else { throw MalformedHello() }
    }
}

/// A ClientHello record split into the fields a fingerprint reads.
private struct ParsedHello {
    let recordVersion: UInt16
    let handshakeVersion: UInt16
    let sessionIDLength: Int
    let cipherSuites: [UInt16]
    let compressionMethods: [UInt8]
    let extensions: [(type: UInt16, data: [UInt8])]
    let supportedGroups: [UInt16]
    let ecPointFormats: [UInt8]
    let keyShares: [(group: UInt16, key: [UInt8])]
    let supportedVersions: [UInt16]
    let signatureAlgorithms: [UInt16]
    let alpn: [String]
    let echLength: Int?

    init(_ record: [UInt8]) throws {
        var reader = Cursor(record)
        guard try reader.integer(1) == 22 else { throw MalformedHello() }
        recordVersion = try reader.u16()
        var message = Cursor(try reader.vector(lengthBytes: 2))
        try reader.end()
        guard try message.integer(1) == 1 else { throw MalformedHello() }
        var hello = Cursor(try message.vector(lengthBytes: 3))
        try message.end()
        handshakeVersion = try hello.u16()
        _ = try hello.take(32)
        sessionIDLength = try hello.vector(lengthBytes: 1).count
        cipherSuites = try Self.u16List(hello.vector(lengthBytes: 2), lengthBytes: 0)
        compressionMethods = try hello.vector(lengthBytes: 1)
        var list = Cursor(try hello.vector(lengthBytes: 2))
        try hello.end()
        var extensions: [(type: UInt16, data: [UInt8])] = []
        while !list.isAtEnd { extensions.append((try list.u16(), try list.vector(lengthBytes: 2))) }
        self.extensions = extensions

        func data(_ type: UInt16) -> [UInt8]? { extensions.first { $0.type == type }?.data }
        supportedGroups = try data(0x000a).map { try Self.u16List($0, lengthBytes: 2) } ?? []
        ecPointFormats = try data(0x000b).map { try Self.list($0, lengthBytes: 1) } ?? []
        keyShares = try data(0x0033).map(Self.keyShares) ?? []
        supportedVersions = try data(0x002b).map { try Self.u16List($0, lengthBytes: 1) } ?? []
        signatureAlgorithms = try data(0x000d).map { try Self.u16List($0, lengthBytes: 2) } ?? []
        alpn = try data(0x0010).map(Self.protocols) ?? []
        echLength = data(0xfe0d)?.count
    }

    /// The data of the first extension of `type`.
    func data(of type: UInt16) -> [UInt8]? {
        extensions.first { $0.type == type }?.data
    }

    /// A whole extension that is one vector (`lengthBytes` of length, none for the bare list).
    static func list(_ data: [UInt8], lengthBytes: Int) throws -> [UInt8] {
        guard lengthBytes > 0 else { return data }
        var reader = Cursor(data)
        let list = try reader.vector(lengthBytes: lengthBytes)
        try reader.end()
        return list
    }

    static func u16List(_ data: [UInt8], lengthBytes: Int) throws -> [UInt16] {
        var reader = Cursor(try list(data, lengthBytes: lengthBytes))
        var values: [UInt16] = []
        while !reader.isAtEnd { values.append(try reader.u16()) }
        return values
    }

    static func keyShares(_ data: [UInt8]) throws -> [(group: UInt16, key: [UInt8])] {
        var reader = Cursor(try list(data, lengthBytes: 2))
        var shares: [(group: UInt16, key: [UInt8])] = []
        while !reader.isAtEnd { shares.append((try reader.u16(), try reader.vector(lengthBytes: 2))) }
        return shares
    }

    static func protocols(_ data: [UInt8]) throws -> [String] {
        var reader = Cursor(try list(data, lengthBytes: 2))
        var names: [String] = []
        while !reader.isAtEnd { names.append(String(decoding: try reader.vector(lengthBytes: 1), as: UTF8.self)) }
        return names
    }

    /// An outer encrypted_client_hello (draft-ietf-tls-esni §5): type, cipher suite, config id, enc, payload.
    struct ECHOuter {
        let type: Int
        let kdf: Int
        let aead: Int
        let configID: Int
        let enc: [UInt8]
        let payload: [UInt8]

        init(_ data: [UInt8]) throws {
            var reader = Cursor(data)
            type = try reader.integer(1)
            kdf = try reader.integer(2)
            aead = try reader.integer(2)
            configID = try reader.integer(1)
            enc = try reader.vector(lengthBytes: 2)
            payload = try reader.vector(lengthBytes: 2)
            try reader.end()
        }
    }
}
