import CSodium

/// The exact byte layouts of the two handshake messages (docs/PROTOCOL.md, "Handshake").
///
/// Every byte of both hellos is ciphertext, a random nonce or random padding, so that a passive observer sees
/// nothing but noise of varying length: each hello is `nonce ‖ sealed header ‖ padding`, the header sealed with
/// XChaCha20-Poly1305 under a key derived from the pre-shared key, the padding of a length the header states.
public enum HandshakeMessage {
    /// X25519 public key size.
    static let publicKeySize = Int(crypto_scalarmult_BYTES)
    /// XChaCha20-Poly1305 nonce size: random per hello, sent in clear (random bytes reveal nothing).
    static let nonceSize = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    /// Poly1305 tag size.
    static let tagSize = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)
    /// Padding is drawn uniformly from 0 to this many bytes, so the first segment of each side varies over
    /// 1,024 sizes; it costs at most 1 KiB once per link.
    public static let maximumPadding = 1023

    /// Client header plaintext: ephemeral public key (32) ‖ Unix time in milliseconds (8) ‖ padding length (2).
    static let clientHeaderPlaintextSize = publicKeySize + 8 + 2
    /// Server header plaintext: ephemeral public key (32) ‖ padding length (2).
    static let serverHeaderPlaintextSize = publicKeySize + 2
    /// The fixed part of a client hello, which tells how much padding follows: nonce ‖ sealed header.
    public static let clientHeaderSize = nonceSize + clientHeaderPlaintextSize + tagSize
    /// The fixed part of a server hello: nonce ‖ sealed header.
    public static let serverHeaderSize = nonceSize + serverHeaderPlaintextSize + tagSize
    /// The longest client hello.
    public static let maximumClientHelloSize = clientHeaderSize + maximumPadding

    /// The protocol version, bound into the client hello (as its associated data) and into every session key,
    /// so that agents of different versions never link: each sees the other's hello fail to verify, as with a
    /// wrong key. Version 4 lets a stream's opener send before OPEN_OK (docs/PROTOCOL.md).
    static let clientHelloAssociatedData = Array("tcptunnel/5 hello".utf8)
    static let sessionLabelClientToServer = Array("tcptunnel/5 c2s".utf8)
    static let sessionLabelServerToClient = Array("tcptunnel/5 s2c".utf8)

    /// A hello: `nonce ‖ XChaCha20-Poly1305(key, nonce, fields ‖ u16 p, ad) ‖ p random bytes`, with a fresh
    /// random nonce and a padding length `p` drawn uniformly from 0 to `maximumPadding`.
    static func sealHello(_ fields: [UInt8], key: SecretBytes, associatedData: [UInt8]) -> [UInt8] {
        let paddingCount = Int(randombytes_uniform(UInt32(maximumPadding + 1)))
        let plaintext = fields + withUnsafeBytes(of: UInt16(paddingCount).bigEndian) { Array($0) }
        var nonce = [UInt8](repeating: 0, count: nonceSize)
        randombytes_buf(&nonce, nonceSize)
        var sealed = [UInt8](repeating: 0, count: plaintext.count + tagSize)
        var sealedCount: UInt64 = 0
        key.withBytes { keyBytes in
            _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                &sealed, &sealedCount, plaintext, UInt64(plaintext.count), associatedData,
                UInt64(associatedData.count), nil, nonce, keyBytes)
        }
        // Padding from the CSPRNG, indistinguishable from the ciphertext before it.
        var padding = [UInt8](repeating: 0, count: paddingCount)
        randombytes_buf(&padding, paddingCount)
        return nonce + sealed + padding
    }

    /// Opens the fixed part of a hello made by `sealHello` (`nonce ‖ sealed header`): its fields and the padding
    /// length it announces, or `nil` when it does not authenticate. The Poly1305 tag is checked before anything
    /// is decrypted, and no public-key operation is involved, so a stranger's bytes cost little. Throws
    /// `.handshakeMalformed` for an authentic header announcing more than `maximumPadding`.
    static func openHello(_ header: ArraySlice<UInt8>, key: SecretBytes, associatedData: [UInt8]) throws(CryptoError)
        -> (fields: [UInt8], paddingCount: Int)?
    {
        guard header.count > nonceSize + tagSize + 2 else { return nil }
        let nonce = Array(header.prefix(nonceSize))
        let sealed = Array(header.dropFirst(nonceSize))
        var plaintext = [UInt8](repeating: 0, count: sealed.count - tagSize)
        var plaintextCount: UInt64 = 0
        let status = key.withBytes { keyBytes in
            crypto_aead_xchacha20poly1305_ietf_decrypt(
                &plaintext, &plaintextCount, nil, sealed, UInt64(sealed.count), associatedData,
                UInt64(associatedData.count), nonce, keyBytes)
        }
        guard status == 0 else { return nil }
        let paddingCount = Int(plaintext.bigEndianInteger(plaintext.count - 2..<plaintext.count))
        guard paddingCount <= maximumPadding else { throw .handshakeMalformed }
        return (Array(plaintext.dropLast(2)), paddingCount)
    }
}

extension [UInt8] {
    /// The big-endian integer in `range`.
    func bigEndianInteger(_ range: Range<Int>) -> UInt64 {
        self[range].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}
