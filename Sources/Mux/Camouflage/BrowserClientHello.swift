/// The TLS 1.3 ClientHello of Chromium 156 (Debian 12's `chromium` package), rebuilt field by field, so that the
/// TLS transport's first packet is the browser's in every part an observer can read: record and handshake
/// versions, the 16 cipher suites, the 17 extensions with their contents and sizes, the key shares
/// (X25519MLKEM768 with a well-formed ML-KEM-768 encapsulation key, then x25519), GREASE in the five places the
/// browser puts it, a random extension order between a leading and a trailing GREASE extension, and a GREASE
/// encrypted_client_hello whose payload takes one of the browser's four sizes.
/// `Tests/EndToEndTests/Fixtures/chromium-client-hellos.txt` holds the browser's own, captured by
/// `scripts/capture-browser-hello`; the tests compare the two.
///
/// The random and the session id are left for the caller: the transport's authentication hides in them
/// (docs/PROTOCOL.md §3.2), so `bytes` carries zeros there until it fills them.
struct BrowserClientHello {
    /// The whole record: header, then the handshake message.
    private(set) var bytes: [UInt8]
    /// Where the 32-byte random lies in `bytes`.
    let randomRange: Range<Int>
    /// Where the 32-byte legacy_session_id lies in `bytes`.
    let sessionIDRange: Range<Int>

    /// A hello naming `serverName` (none for a cover given by address, as a browser sends none for one), offering `x25519Share` and, as the X25519 half of the hybrid share,
    /// `hybridX25519Share` (both public keys of real key pairs, as the browser's are), and `echKey`, the public
    /// key of a throwaway pair for the GREASE ECH. `generator` draws everything else a browser draws at random.
    init(
        serverName: String?, x25519Share: [UInt8], hybridX25519Share: [UInt8], echKey: [UInt8],
        using generator: inout some RandomNumberGenerator
    ) {
        precondition(x25519Share.count == 32 && hybridX25519Share.count == 32 && echKey.count == 32)
        let grease = Grease(using: &generator)
        var extensions = Self.extensions(
            serverName: serverName, grease: grease,
            keyShare: Self.keyShare(grease: grease, x25519: x25519Share, hybrid: hybridX25519Share, using: &generator),
            ech: Self.greaseECH(key: echKey, using: &generator))
        extensions.shuffle(using: &generator)
        var body = TLSWriter()
        body.append(grease.firstExtension, u16Length: [])
        for (type, data) in extensions { body.append(type, u16Length: data) }
        body.append(grease.lastExtension, u16Length: [0])

        var hello = TLSWriter()
        hello.append([0x03, 0x03])  // legacy_version
        let randomStart = hello.bytes.count
        hello.append([UInt8](repeating: 0, count: 32))
        hello.append([32])
        let sessionIDStart = hello.bytes.count
        hello.append([UInt8](repeating: 0, count: 32))
        hello.append(u16Length: Self.cipherSuites(grease: grease.cipherSuite))
        hello.append([1, 0])  // one compression method: null
        hello.append(u16Length: body.bytes)

        let message = [1] + TLSWriter.u24(hello.bytes.count) + hello.bytes
        let offset = TLSRecord.headerSize + 4
        bytes = TLSRecord.header(.handshake, length: message.count, version: TLSRecord.clientHelloVersion) + message
        randomRange = offset + randomStart..<offset + randomStart + 32
        sessionIDRange = offset + sessionIDStart..<offset + sessionIDStart + 32
    }

    /// Writes `random` and `sessionID` into their fields.
    mutating func fill(random: [UInt8]? = nil, sessionID: [UInt8]? = nil) {
        if let random { bytes.replaceSubrange(randomRange, with: random) }
        if let sessionID { bytes.replaceSubrange(sessionIDRange, with: sessionID) }
    }

    /// The key-share groups the hello offers, as the server names them in its answer.
    static let x25519Group: UInt16 = 0x001d
    static let hybridGroup: UInt16 = 0x11ec  // X25519MLKEM768
    /// The cipher suite whose Finished is 48 bytes (SHA-384); the other two TLS 1.3 suites have 32-byte ones.
    static let sha384Suite: UInt16 = 0x1302

    // MARK: The browser's fields

    private static func cipherSuites(grease: UInt16) -> [UInt8] {
        let suites: [UInt16] = [
            grease, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c,
            0x009d, 0x002f, 0x0035,
        ]
        return suites.flatMap(TLSWriter.u16)
    }

    private static func extensions(serverName: String?, grease: Grease, keyShare: [UInt8], ech: [UInt8])
        -> [(UInt16, [UInt8])]
    {
        let signatureAlgorithms: [UInt16] = [
            grease.signatureAlgorithm, 0x0904, 0x0905, 0x0906, 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806,
            0x0601,
        ]
        let groups: [UInt16] = [grease.group, hybridGroup, x25519Group, 0x0017, 0x0018]
        var extensions: [(UInt16, [UInt8])] = [
            (0x0005, [1, 0, 0, 0, 0]),  // status_request: OCSP, no responders, no extensions
            (0x000a, TLSWriter.u16Length(groups.flatMap(TLSWriter.u16))),  // supported_groups
            (0x000b, [1, 0]),  // ec_point_formats: uncompressed
            (0x000d, TLSWriter.u16Length(signatureAlgorithms.flatMap(TLSWriter.u16))),
            (0x0010, TLSWriter.u16Length([2] + Array("h2".utf8) + [8] + Array("http/1.1".utf8))),  // ALPN
            (0x0012, []),  // signed_certificate_timestamp
            (0x0017, []),  // extended_master_secret
            (0x001b, [2, 0x00, 0x02]),  // compress_certificate: brotli
            (0x0023, []),  // session_ticket
            (0x002b, [6] + [grease.version, 0x0304, 0x0303].flatMap(TLSWriter.u16)),  // supported_versions
            (0x002d, [1, 1]),  // psk_key_exchange_modes: psk_dhe_ke
            (0x0033, keyShare),
            (0x44cd, TLSWriter.u16Length([2] + Array("h2".utf8))),  // application_settings (ALPS)
            (0xca34, trustAnchors),
            (0xfe0d, ech),  // encrypted_client_hello (GREASE)
            (0xff01, [0]),  // renegotiation_info
        ]
        if let serverName {
            let name: [UInt8] = [0] + TLSWriter.u16Length(Array(serverName.utf8))
            extensions.append((0x0000, TLSWriter.u16Length(name)))  // server_name
        }
        return extensions
    }

    /// key_share: GREASE (one zero byte), X25519MLKEM768 (ML-KEM-768 encapsulation key ‖ X25519), x25519.
    private static func keyShare(
        grease: Grease, x25519: [UInt8], hybrid: [UInt8], using generator: inout some RandomNumberGenerator
    ) -> [UInt8] {
        let hybridShare = MLKEMEncapsulationKey.random(using: &generator) + hybrid
        return TLSWriter.u16Length(
            TLSWriter.u16(grease.group) + TLSWriter.u16Length([0]) + TLSWriter.u16(hybridGroup)
                + TLSWriter.u16Length(hybridShare) + TLSWriter.u16(x25519Group) + TLSWriter.u16Length(x25519))
    }

    /// The GREASE encrypted_client_hello BoringSSL sends when it has no ECH configuration: an outer hello for
    /// HKDF-SHA256 and AES-128-GCM, a random config id, an X25519 key, and a random payload of 128, 160, 192 or
    /// 224 bytes plus the 16-byte tag.
    private static func greaseECH(key: [UInt8], using generator: inout some RandomNumberGenerator) -> [UInt8] {
        let payload = randomBytes(32 * Int.random(in: 4...7, using: &generator) + 16, using: &generator)
        return [0, 0x00, 0x01, 0x00, 0x01, UInt8.random(in: 0...255, using: &generator)] + TLSWriter.u16Length(key)
            + TLSWriter.u16Length(payload)
    }

    /// The trust_anchors extension (0xca34) as Chromium 156 sends it: the identifiers of its root store's
    /// anchors, the same in every hello.
    private static let trustAnchors: [UInt8] = hexBytes(
        "00b80582df1302010582df1302060582df13020d0582df13020e0582df13020f0582df1302120582df1302130582df1302140883"
            + "9a648c9b2d010708839a648c9b2d010808839a648c9b2d010908839a648c9b2d010a08839a648c9b2d010b08839a648c9b2d01"
            + "0c08839a648c9b2d010d08839a648c9b2d011208839a648c9b2d011304d679090104d679090404d679090504d679090604d679"
            + "090704d679090804d679090a04d679090b04d679090c04d679090d04d679090f")

    /// GREASE values (RFC 8701): 0x?a?a, drawn per hello for each place the browser puts one, the key share's
    /// group the same as supported_groups', and the two extensions' never equal (as BoringSSL ensures).
    private struct Grease {
        let cipherSuite, group, signatureAlgorithm, version, firstExtension, lastExtension: UInt16

        init(using generator: inout some RandomNumberGenerator) {
            func draw() -> UInt16 { UInt16(UInt8.random(in: 0...15, using: &generator)) * 0x1010 + 0x0a0a }
            cipherSuite = draw()
            group = draw()
            signatureAlgorithm = draw()
            version = draw()
            firstExtension = draw()
            let last = draw()
            lastExtension = last == firstExtension ? last ^ 0x1010 : last
        }
    }
}

/// An ML-KEM-768 encapsulation key (FIPS 203) that nobody will decapsulate to: 3 × 256 coefficients drawn
/// uniformly below q = 3,329 and packed 12 bits each, then a 32-byte seed. A real key's coefficients are
/// uniform modulo q too (under the module-LWE assumption), and any coefficient of q or more would fail the
/// modulus check a server must make, so random bytes would not do.
enum MLKEMEncapsulationKey {
    static let size = 1184
    private static let modulus: UInt16 = 3329

    static func random(using generator: inout some RandomNumberGenerator) -> [UInt8] {
        var key: [UInt8] = []
        key.reserveCapacity(size)
        for _ in 0..<384 {
            let a = UInt16.random(in: 0..<modulus, using: &generator)
            let b = UInt16.random(in: 0..<modulus, using: &generator)
            key += [UInt8(a & 0xff), UInt8(a >> 8) | UInt8(b & 0x0f) << 4, UInt8(b >> 4)]
        }
        return key + randomBytes(32, using: &generator)
    }
}

/// `count` bytes from `generator`.
func randomBytes(_ count: Int, using generator: inout some RandomNumberGenerator) -> [UInt8] {
    (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

/// The bytes a string of hexadecimal digit pairs stands for.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8).map { $0 <= 0x39 ? $0 - 0x30 : ($0 | 0x20) - 0x57 }
    precondition(digits.count % 2 == 0 && digits.allSatisfy { $0 < 16 }, "not hexadecimal pairs")
    return stride(from: 0, to: digits.count, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
}
