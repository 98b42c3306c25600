/// The TLS record layer's fixed parts (RFC 8446 §5.1), as the TLS transport writes and reads them.
enum TLSRecord {
    /// A record's content type.
    enum ContentType: UInt8 {
        case changeCipherSpec = 20
        case alert = 21
        case handshake = 22
        case applicationData = 23
    }

    /// type (1) ‖ legacy_record_version (2) ‖ length (2).
    static let headerSize = 5
    /// The longest record payload RFC 8446 allows (2^14 + 256); a longer one is malformed.
    static let maximumLength = 16_640
    /// The longest application-data record the transport writes: a full 16 KiB fragment, its inner content-type
    /// byte and a 16-byte AEAD tag, as every AES-GCM or ChaCha20-Poly1305 TLS 1.3 stack writes it. Longer ones,
    /// though legal, would mark the link.
    static let maximumWrittenLength = 16_384 + 1 + 16
    /// TLS 1.2's version number, which TLS 1.3 keeps in every record after the ClientHello's.
    static let version: (UInt8, UInt8) = (0x03, 0x03)
    /// The version in the record that carries a ClientHello, as browsers write it (TLS 1.0).
    static let clientHelloVersion: (UInt8, UInt8) = (0x03, 0x01)
    /// The whole ChangeCipherSpec record a TLS 1.3 peer sends once for middlebox compatibility (RFC 8446 §D.4).
    static let changeCipherSpec: [UInt8] = [20, 0x03, 0x03, 0x00, 0x01, 0x01]

    /// A record header.
    struct Header: Equatable {
        let type: UInt8
        let version: UInt16
        /// The payload length.
        let length: Int

        /// The header in the first `headerSize` bytes of `bytes`.
        init(_ bytes: some Collection<UInt8>) {
            precondition(bytes.count >= TLSRecord.headerSize, "a record header is 5 bytes")
            let b = Array(bytes.prefix(TLSRecord.headerSize))
            type = b[0]
            version = UInt16(b[1]) << 8 | UInt16(b[2])
            length = Int(b[3]) << 8 | Int(b[4])
        }

        /// Whether it is an application-data record TLS 1.3 could send: version 0x0303, 1 to 16,640 bytes.
        var isApplicationData: Bool {
            type == ContentType.applicationData.rawValue && version == 0x0303 && (1...maximumLength).contains(length)
        }

        /// Whether it is the one-byte ChangeCipherSpec record of TLS 1.3's middlebox compatibility.
        var isChangeCipherSpec: Bool {
            type == ContentType.changeCipherSpec.rawValue && version == 0x0303 && length == 1
        }
    }

    /// The header of a record of `type` holding `length` bytes, with version `version` (0x0303 by default).
    static func header(_ type: ContentType, length: Int, version: (UInt8, UInt8) = version) -> [UInt8] {
        precondition(length <= 0xFFFF, "a record length is 16 bits")
        return [type.rawValue, version.0, version.1, UInt8(length >> 8), UInt8(length & 0xFF)]
    }
}
