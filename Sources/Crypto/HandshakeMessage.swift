import CSodium

/// The exact byte layouts of the native transport's two handshake messages (docs/PROTOCOL.md §3.1).
///
/// Each hello is the base64 text (without `=` padding) of `nonce ‖ sealed header`, followed by padding
/// characters drawn from the same 64-character alphabet: the header sealed with XChaCha20-Poly1305 under a key
/// derived from the pre-shared key, the padding of a length the header states. Every byte is printable ASCII, so
/// a detector of fully encrypted traffic exempts a link's first packet whatever else follows it in its segment,
/// and nothing in it is fixed: the text of a random nonce and of ciphertext, then random text of random length.
public enum HandshakeMessage {
    /// X25519 public key size.
    static let publicKeySize = Int(crypto_scalarmult_BYTES)
    /// XChaCha20-Poly1305 nonce size: random per hello, sent as text (random bytes reveal nothing).
    static let nonceSize = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    /// Poly1305 tag size.
    static let tagSize = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)
    /// Padding is drawn uniformly from 0 to this many characters, so the first segment of each side varies over
    /// 1,024 sizes; it costs at most 1 KiB once per link.
    public static let maximumPadding = 1023

    /// Client header plaintext: ephemeral public key (32) ‖ Unix time in milliseconds (8) ‖ padding length (2).
    static let clientHeaderPlaintextSize = publicKeySize + 8 + 2
    /// Server header plaintext: ephemeral public key (32) ‖ padding length (2).
    static let serverHeaderPlaintextSize = publicKeySize + 2
    /// The fixed part of a client hello as text, which tells how much padding follows: base64 of nonce ‖ sealed
    /// header (82 bytes).
    public static let clientHeaderSize = HelloText.encodedCount(nonceSize + clientHeaderPlaintextSize + tagSize)
    /// The fixed part of a server hello as text: base64 of nonce ‖ sealed header (74 bytes).
    public static let serverHeaderSize = HelloText.encodedCount(nonceSize + serverHeaderPlaintextSize + tagSize)
    /// The longest client hello.
    public static let maximumClientHelloSize = clientHeaderSize + maximumPadding

    /// The protocol version (docs/PROTOCOL.md), bound into the client hello (as its associated data) and into
    /// every session key, so that agents of different versions never link: each sees the other's hello fail to
    /// verify, as with a wrong key. Version 6 writes the native hellos as text and adds the TLS transport.
    public static let protocolVersion = 8
    static let clientHelloAssociatedData = Array("tcptunnel/\(protocolVersion) hello".utf8)
    static let sessionLabelClientToServer = Array("tcptunnel/\(protocolVersion) c2s".utf8)
    static let sessionLabelServerToClient = Array("tcptunnel/\(protocolVersion) s2c".utf8)
    /// Version 8 adds these: a value both ends derive per connection, which a resumption's proof binds to; the
    /// id of the session a link begins; and the key that proves a later connection continues it.
    static let bindingLabel = Array("tcptunnel/\(protocolVersion) binding".utf8)
    static let sessionIDLabel = Array("tcptunnel/\(protocolVersion) session id".utf8)
    static let resumeKeyLabel = Array("tcptunnel/\(protocolVersion) resume key".utf8)
    static let resumeProofLabel = Array("tcptunnel/\(protocolVersion) resume proof".utf8)

    /// A hello: `text(nonce ‖ XChaCha20-Poly1305(key, nonce, fields ‖ u16 p, ad)) ‖ p random characters`, with
    /// a fresh random nonce and a padding length `p` drawn uniformly from 0 to `maximumPadding`.
    static func sealHello(_ fields: [UInt8], key: SecretBytes, associatedData: [UInt8]) -> [UInt8] {
        let paddingCount = Int(randombytes_uniform(UInt32(maximumPadding + 1)))
        let plaintext = fields + withUnsafeBytes(of: UInt16(paddingCount).bigEndian) { Array($0) }
        var nonce = [UInt8](repeating: 0, count: nonceSize)
        randombytes_buf(&nonce, nonceSize)
        let sealed = seal(plaintext, key: key, nonce: nonce[...], associatedData: associatedData)
        return HelloText.encode(nonce + sealed) + HelloText.randomCharacters(paddingCount)
    }

    /// Opens the fixed part of a hello made by `sealHello` (the text of `nonce ‖ sealed header`): its fields and
    /// the padding length it announces and its tag, or `nil` when it is not such text or does not authenticate. The Poly1305
    /// tag is checked before anything is decrypted, and no public-key operation is involved, so a stranger's
    /// bytes cost little. Throws `.handshakeMalformed` for an authentic header announcing more than
    /// `maximumPadding`.
    static func openHello(_ header: ArraySlice<UInt8>, key: SecretBytes, associatedData: [UInt8]) throws(CryptoError)
        -> (fields: [UInt8], paddingCount: Int, tag: [UInt8])?
    {
        guard let bytes = HelloText.decode(header), bytes.count > nonceSize + tagSize + 2 else { return nil }
        let sealed = bytes[nonceSize...]
        guard let plaintext = open(sealed, key: key, nonce: bytes[..<nonceSize], associatedData: associatedData)
        else { return nil }
        let paddingCount = Int(plaintext.bigEndianInteger(plaintext.count - 2..<plaintext.count))
        guard paddingCount <= maximumPadding else { throw .handshakeMalformed }
        return (Array(plaintext.dropLast(2)), paddingCount, Array(sealed.suffix(tagSize)))
    }

    /// XChaCha20-Poly1305 of `plaintext` under `key` and the 24-byte `nonce`: ciphertext ‖ tag.
    static func seal(_ plaintext: [UInt8], key: SecretBytes, nonce: ArraySlice<UInt8>, associatedData: [UInt8])
        -> [UInt8]
    {
        precondition(nonce.count == nonceSize, "an XChaCha20 nonce is 24 bytes")
        var sealed = [UInt8](repeating: 0, count: plaintext.count + tagSize)
        var sealedCount: UInt64 = 0
        key.withBytes { keyBytes in
            _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                &sealed, &sealedCount, plaintext, UInt64(plaintext.count), associatedData,
                UInt64(associatedData.count), nil, Array(nonce), keyBytes)
        }
        return sealed
    }

    /// The plaintext of `sealed` (ciphertext ‖ tag), or `nil` when the tag does not verify; the tag is checked
    /// before anything is decrypted.
    static func open(_ sealed: ArraySlice<UInt8>, key: SecretBytes, nonce: ArraySlice<UInt8>, associatedData: [UInt8])
        -> [UInt8]?
    {
        guard nonce.count == nonceSize, sealed.count >= tagSize else { return nil }
        var plaintext = [UInt8](repeating: 0, count: sealed.count - tagSize)
        var plaintextCount: UInt64 = 0
        let status = key.withBytes { keyBytes in
            crypto_aead_xchacha20poly1305_ietf_decrypt(
                &plaintext, &plaintextCount, nil, Array(sealed), UInt64(sealed.count), associatedData,
                UInt64(associatedData.count), Array(nonce), keyBytes)
        }
        return status == 0 ? plaintext : nil
    }
}

/// The native hellos' text form: standard base64 without `=` padding (libsodium's constant-time codec, which
/// refuses any other character and non-zero trailing bits), and random padding characters of its alphabet.
enum HelloText {
    /// The 64 characters of standard base64, in the order of their values.
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let variant = Int32(sodium_base64_VARIANT_ORIGINAL_NO_PADDING)

    /// The number of characters `byteCount` bytes become.
    static func encodedCount(_ byteCount: Int) -> Int {
        sodium_base64_encoded_len(byteCount, variant) - 1  // without its terminating NUL
    }

    static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var text = [CChar](repeating: 0, count: encodedCount(bytes.count) + 1)
        _ = sodium_bin2base64(&text, text.count, bytes, bytes.count, variant)
        return text.dropLast().map { UInt8(bitPattern: $0) }
    }

    /// The bytes `text` stands for, or `nil` when it is not canonical base64 without padding.
    static func decode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        // libsodium's decoder reads a byte above 0x7F as some character of the alphabet: refuse it first.
        guard text.allSatisfy({ $0 < 0x80 }) else { return nil }
        var bytes = [UInt8](repeating: 0, count: text.count * 3 / 4 + 1)
        var decodedCount = 0
        var end: UnsafePointer<CChar>?
        let status = text.withUnsafeBufferPointer { chars in
            chars.withMemoryRebound(to: CChar.self) { chars in
                sodium_base642bin(
                    &bytes, bytes.count, chars.baseAddress, chars.count, nil, &decodedCount, &end, variant)
                    == 0 && end == chars.baseAddress.map { $0 + chars.count }
            }
        }
        return status ? Array(bytes.prefix(decodedCount)) : nil
    }

    /// `count` characters of the alphabet, each drawn uniformly (a byte's low six bits).
    static func randomCharacters(_ count: Int) -> [UInt8] {
        var random = [UInt8](repeating: 0, count: count)
        randombytes_buf(&random, count)
        return random.map { alphabet[Int($0 & 63)] }
    }
}

extension [UInt8] {
    /// The big-endian integer in `range`.
    func bigEndianInteger(_ range: Range<Int>) -> UInt64 {
        self[range].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}
