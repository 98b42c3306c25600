import Crypto

/// Turns frames into sealed link bytes for one direction. Owned by the link's writer thread.
struct FrameEncoder {
    private var sealer: FrameSealer
    /// Reused plaintext buffer, so encoding allocates nothing once it has grown to the largest frame.
    private var plaintext: [UInt8] = []

    init(sealer: FrameSealer) {
        self.sealer = sealer
        plaintext.reserveCapacity(Limits.maxFrameBody)
    }

    /// Appends `frame`, sealed, to `output`.
    mutating func append(_ frame: Frame, to output: inout [UInt8]) throws(CryptoError) {
        plaintext.removeAll(keepingCapacity: true)
        FrameCodec.encode(frame, into: &plaintext)
        try plaintext.withUnsafeBytes { raw in
            Result { () throws(CryptoError) in try sealer.seal(raw, appendingTo: &output) }
        }.get()
    }
}
