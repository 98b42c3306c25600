import CSodium

/// Opens frames sealed by the peer's `FrameSealer`, in order. Any failure is final for the link:
/// the nonce counters no longer agree.
///
/// Not thread-safe: one reader owns it.
public struct FrameOpener: Sendable {
    private let key: SecretBytes
    private var nonce = FrameNonce()

    init(key: SecretBytes) {
        self.key = key
    }

    /// Opens a `SealedFrame.lengthBlockSize`-byte length block and returns the body's plaintext length.
    /// The caller checks the length against its limit before reading the body.
    public mutating func openLength(_ block: UnsafeRawBufferPointer) throws(CryptoError) -> Int {
        precondition(block.count == SealedFrame.lengthBlockSize)
        var length: UInt32 = 0
        try nonce.ensureAvailable(1)
        let isAuthentic = withUnsafeMutableBytes(of: &length) { openBlock(block, into: $0.baseAddress!) }
        guard isAuthentic else { throw .forged }
        return Int(UInt32(bigEndian: length))
    }

    /// Opens a sealed body (its plaintext length plus `SealedFrame.tagSize` bytes) into `output`,
    /// which must hold `sealed.count - SealedFrame.tagSize` bytes.
    public mutating func openBody(_ sealed: UnsafeRawBufferPointer, into output: UnsafeMutableRawPointer)
        throws(CryptoError)
    {
        guard sealed.count >= SealedFrame.tagSize else { throw .forged }
        try nonce.ensureAvailable(1)
        guard openBlock(sealed, into: output) else { throw .forged }
    }

    /// Returns whether the block was authentic. Call `nonce.ensureAvailable(1)` first.
    private mutating func openBlock(_ sealed: UnsafeRawBufferPointer, into output: UnsafeMutableRawPointer) -> Bool {
        let key = self.key
        // libsodium verifies the tag before it writes any plaintext.
        let status = nonce.withNext { nonceBytes in
            key.withBytes { keyBytes in
                crypto_aead_xchacha20poly1305_ietf_decrypt(
                    output.assumingMemoryBound(to: UInt8.self), nil, nil,
                    sealed.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(sealed.count),
                    nil, 0, nonceBytes, keyBytes)
            }
        }
        return status == 0
    }
}
