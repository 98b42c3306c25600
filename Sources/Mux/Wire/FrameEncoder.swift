import Crypto

/// Turns frames into sealed link bytes for one direction, in a batch buffer allocated once.
/// Owned by the link's writer thread.
struct FrameEncoder {
    private var sealer: FrameSealer
    /// Sealed frames waiting to be sent.
    let output = ByteBuffer(capacity: Limits.writerBatchBytes + Limits.maxSealedFrame)
    /// One control frame's plaintext, reused for every frame.
    private let plaintext = ByteBuffer(capacity: Limits.maxFrameBody)

    init(sealer: FrameSealer) {
        self.sealer = sealer
    }

    /// Whether `output` has room for `frame` sealed.
    func canAppend(_ frame: OutboundFrame) -> Bool {
        frame.plaintextSize + SealedFrame.overhead <= output.available
    }

    /// Seals `frame` onto the end of `output`: DATA straight from its block, any other frame encoded first.
    /// Call `canAppend` first.
    mutating func append(_ frame: OutboundFrame) throws(CryptoError) {
        let size = frame.plaintextSize
        precondition(size + SealedFrame.overhead <= output.available, "batch buffer overflow")
        let plaintext: UnsafeRawBufferPointer
        switch frame {
        case .data(let id, let block): plaintext = block.plaintext(for: id)
        case .frame(let frame):
            FrameCodec.encode(frame, into: self.plaintext.base)
            plaintext = UnsafeRawBufferPointer(start: self.plaintext.base, count: size)
        case .datagram(let datagram):
            FrameCodec.encode(.datagram(datagram.flow, datagram.payload), into: self.plaintext.base)
            plaintext = UnsafeRawBufferPointer(start: self.plaintext.base, count: size)
        }
        try sealer.seal(plaintext, into: output.base + output.count)
        output.count += size + SealedFrame.overhead
    }
}
