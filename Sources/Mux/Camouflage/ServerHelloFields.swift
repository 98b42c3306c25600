/// The fields of a TLS 1.3 ServerHello record that the TLS transport reads: where its random, echoed session id
/// and key share lie, and the cipher suite and group it chose. Read from a cover site's answer (to learn its
/// shape) and, by the local agent, from the remote agent's; pure and bounds-checked.
package struct ServerHelloFields: Equatable {
    package let randomRange: Range<Int>
    package let sessionIDRange: Range<Int>
    /// The key_exchange bytes of the key_share extension.
    package let keyExchangeRange: Range<Int>
    package let cipherSuite: UInt16
    /// The key share's group: `BrowserClientHello.x25519Group` or `.hybridGroup`.
    package let group: UInt16

    /// Why a record is not a TLS 1.3 ServerHello the transport can answer in the shape of.
    package enum Refusal: Error, Equatable, CustomStringConvertible {
        /// Not a handshake record holding exactly one ServerHello.
        case notServerHello
        /// A HelloRetryRequest: the server wants a key share the browser's hello did not offer.
        case helloRetryRequest
        /// No supported_versions naming TLS 1.3: a TLS 1.2 (or older) server.
        case notTLS13
        /// A key share of a group other than x25519 and X25519MLKEM768, or of the wrong size.
        case unusableKeyShare

        package var description: String {
            switch self {
            case .notServerHello: "the answer is not a TLS ServerHello"
            case .helloRetryRequest: "it asked for another key share (HelloRetryRequest)"
            case .notTLS13: "it does not speak TLS 1.3"
            case .unusableKeyShare: "it chose a key-share group other than x25519 and X25519MLKEM768"
            }
        }
    }

    /// RFC 8446 §4.1.3: the random of a HelloRetryRequest, which is otherwise a ServerHello.
    private static let helloRetryRandom = hexBytes("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

    /// The fields of `record`, a whole TLS record; throws what it is instead when it is not a usable ServerHello.
    package init(record: [UInt8]) throws(Refusal) {
        var reader = TLSReader(record)
        guard reader.u8() == TLSRecord.ContentType.handshake.rawValue, reader.u8() == 0x03, reader.u8() != nil,
            reader.u16().map(Int.init) == record.count - TLSRecord.headerSize,
            reader.u8() == 2, reader.u24() == record.count - TLSRecord.headerSize - 4,
            reader.u16() == 0x0303, let random = reader.skip(32), let sessionID = reader.u8Vector(),
            let suite = reader.u16(), reader.u8() == 0, let extensions = reader.u16Vector(), reader.isAtEnd
        else { throw .notServerHello }
        guard Array(record[random]) != Self.helloRetryRandom else { throw .helloRetryRequest }
        var version: UInt16?
        var share: (group: UInt16, key: Range<Int>)?
        var list = TLSReader(record, range: extensions)
        while !list.isAtEnd {
            guard let type = list.u16(), let data = list.u16Vector() else { throw .notServerHello }
            var field = TLSReader(record, range: data)
            switch type {
            case 0x002b: version = field.u16()
            case 0x0033:
                guard let group = field.u16(), let key = field.u16Vector() else { throw .notServerHello }
                share = (group, key)
            default: break
            }
        }
        guard version == 0x0304 else { throw .notTLS13 }
        guard let share, Self.keySize(of: share.group) == share.key.count else { throw .unusableKeyShare }
        randomRange = random
        sessionIDRange = sessionID
        keyExchangeRange = share.key
        cipherSuite = suite
        group = share.group
    }

    /// The size of a server's key_exchange for `group`: 32 for x25519; the 1,088-byte ML-KEM-768 ciphertext and
    /// 32 for X25519MLKEM768; `nil` for a group the transport cannot answer with.
    static func keySize(of group: UInt16) -> Int? {
        switch group {
        case BrowserClientHello.x25519Group: 32
        case BrowserClientHello.hybridGroup: MLKEMCiphertext.size + 32
        default: nil
        }
    }

    /// Whether the key share is X25519MLKEM768's, whose last 32 bytes are the X25519 share.
    var isHybrid: Bool { group == BrowserClientHello.hybridGroup }

    /// The X25519 public key in the key share (all of it, or the hybrid share's last 32 bytes).
    var x25519Range: Range<Int> { keyExchangeRange.upperBound - 32..<keyExchangeRange.upperBound }
}

/// An ML-KEM-768 ciphertext (FIPS 203): 3 × 256 coefficients compressed to 10 bits and 256 to 4 bits. Every
/// byte string of its size decodes as one, so a server's share that nobody decapsulates is random bytes.
enum MLKEMCiphertext {
    static let size = 1088
}
