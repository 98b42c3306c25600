import CSodium

/// Layout constants of a sealed frame on the wire (docs/PROTOCOL.md, "Sealed frames").
public enum SealedFrame {
    /// Poly1305 tag size.
    public static let tagSize = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)
    /// The sealed length block: a 4-byte big-endian body length plus its tag.
    public static let lengthBlockSize = 4 + tagSize
    /// Bytes a sealed frame adds to its plaintext.
    public static let overhead = lengthBlockSize + tagSize
}

/// Seals frames in one direction of one link. Each frame becomes a sealed length block followed by
/// the sealed body, each under its own nonce, so the length is as secret and as authenticated as the data.
///
/// Not thread-safe: one writer owns it.
public struct FrameSealer: Sendable {
    private let key: SecretBytes
    private var nonce = FrameNonce()

    init(key: SecretBytes) {
        self.key = key
    }

    /// Writes the sealed form of `plaintext` to `output`, which must have room for
    /// `plaintext.count + SealedFrame.overhead` bytes.
    public mutating func seal(_ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawPointer)
        throws(CryptoError)
    {
        try nonce.ensureAvailable(2)
        var length = UInt32(plaintext.count).bigEndian
        withUnsafeBytes(of: &length) { sealBlock($0, into: output) }
        sealBlock(plaintext, into: output + SealedFrame.lengthBlockSize)
    }

    private mutating func sealBlock(_ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawPointer) {
        let key = self.key
        nonce.withNext { nonceBytes in
            key.withBytes { keyBytes in
                _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                    output.assumingMemoryBound(to: UInt8.self), nil,
                    plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(plaintext.count),
                    nil, 0, nil, nonceBytes, keyBytes)
            }
        }
    }
}
