import Crypto

/// Turns frames into sealed link bytes for one direction, in a batch buffer allocated once.
/// Owned by the link's writer thread.
struct FrameEncoder {
    private var sealer: FrameSealer
    /// Sealed frames waiting to be sent.
    let output = ByteBuffer(capacity: Limits.writerBatchBytes + Limits.maxSealedFrame)
    /// One frame's plaintext, reused for every frame.
    private let plaintext = ByteBuffer(capacity: Limits.maxFrameBody)

    init(sealer: FrameSealer) {
        self.sealer = sealer
    }

    /// Whether `output` has room for `frame` sealed.
    func canAppend(_ frame: Frame) -> Bool {
        FrameCodec.encodedSize(of: frame) + SealedFrame.overhead <= output.available
    }

    /// Seals `frame` onto the end of `output`. Call `canAppend` first.
    mutating func append(_ frame: Frame) throws(CryptoError) {
        let size = FrameCodec.encodedSize(of: frame)
        precondition(size + SealedFrame.overhead <= output.available, "batch buffer overflow")
        FrameCodec.encode(frame, into: plaintext.base)
        try sealer.seal(UnsafeRawBufferPointer(start: plaintext.base, count: size), into: output.base + output.count)
        output.count += size + SealedFrame.overhead
    }
}
