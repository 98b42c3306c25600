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

    /// The labels bind the version into every derived key, so agents of different versions never link.
    static let sessionLabelClientToServer = Array("tcptunnel/3 c2s".utf8)
    static let sessionLabelServerToClient = Array("tcptunnel/3 s2c".utf8)

    /// `nonce ‖ XChaCha20-Poly1305(key, nonce, plaintext, ad)` with a fresh random nonce.
    static func seal(_ plaintext: [UInt8], key: SecretBytes, associatedData: [UInt8]) -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: nonceSize)
        randombytes_buf(&nonce, nonceSize)
        var sealed = [UInt8](repeating: 0, count: plaintext.count + tagSize)
        var sealedCount: UInt64 = 0
        key.withBytes { keyBytes in
            _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                &sealed, &sealedCount, plaintext, UInt64(plaintext.count), associatedData,
                UInt64(associatedData.count), nil, nonce, keyBytes)
        }
        return nonce + sealed
    }

    /// Opens `nonce ‖ sealed` made by `seal`; `nil` when it does not authenticate. The Poly1305 tag is checked
    /// before anything is decrypted, and no public-key operation is involved, so a stranger's bytes cost little.
    static func open(_ message: ArraySlice<UInt8>, key: SecretBytes, associatedData: [UInt8]) -> [UInt8]? {
        guard message.count > nonceSize + tagSize else { return nil }
        let nonce = Array(message.prefix(nonceSize))
        let sealed = Array(message.dropFirst(nonceSize))
        var plaintext = [UInt8](repeating: 0, count: sealed.count - tagSize)
        var plaintextCount: UInt64 = 0
        let status = key.withBytes { keyBytes in
            crypto_aead_xchacha20poly1305_ietf_decrypt(
                &plaintext, &plaintextCount, nil, sealed, UInt64(sealed.count), associatedData,
                UInt64(associatedData.count), nonce, keyBytes)
        }
        return status == 0 ? plaintext : nil
    }

    /// `count` bytes from libsodium's CSPRNG: hello padding, indistinguishable from the ciphertext around it.
    static func randomPadding(_ count: Int) -> [UInt8] {
        var padding = [UInt8](repeating: 0, count: count)
        randombytes_buf(&padding, count)
        return padding
    }

    /// A padding length drawn uniformly from 0 to `maximumPadding`.
    static func randomPaddingCount() -> Int {
        Int(randombytes_uniform(UInt32(maximumPadding + 1)))
    }
}

extension [UInt8] {
    /// The big-endian integer in `range`.
    func bigEndianInteger(_ range: Range<Int>) -> UInt64 {
        self[range].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}
