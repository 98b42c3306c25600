/// The 24-byte XChaCha20 nonce of each sealed block in one direction: 16 zero bytes, then a 64-bit
/// big-endian counter. It is never sent; both ends count, so a replayed, dropped or reordered block
/// fails authentication.
struct FrameNonce {
    static let size = 24
    private(set) var counter: UInt64 = 0
    /// The current nonce; rewritten in place so sealing allocates nothing per frame.
    private var bytes = [UInt8](repeating: 0, count: size)

    /// Throws unless `count` more nonces remain: the link must end rather than wrap the counter.
    func ensureAvailable(_ count: UInt64) throws(CryptoError) {
        guard counter <= UInt64.max - count else { throw .nonceSpaceExhausted }
    }

    /// Calls `body` with the next unused nonce. Call `ensureAvailable` first.
    mutating func withNext<R>(_ body: (UnsafePointer<UInt8>) -> R) -> R {
        precondition(counter < .max, "nonce counter would wrap")
        var value = counter.bigEndian
        withUnsafeBytes(of: &value) { source in
            for i in 0..<8 { bytes[16 + i] = source[i] }
        }
        counter += 1
        return bytes.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
