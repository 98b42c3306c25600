/// A frame for the link's writer to seal: DATA in a block of its own, sealed from where the stream received
/// it, or any other frame, encoded first.
enum OutboundFrame {
    case frame(Frame)
    case data(StreamID, DataBlock)

    /// The frame's plaintext size.
    var plaintextSize: Int {
        switch self {
        case .frame(let frame): FrameCodec.encodedSize(of: frame)
        case .data(_, let block): Frame.headerSize + block.count
        }
    }

    /// Payload bytes of DATA, which count against the outbound queue's limit; 0 for any other frame.
    var dataSize: Int {
        if case .data(_, let block) = self { block.count } else { 0 }
    }

    /// Whether the frame is one of a stream's opening exchange (OPEN, OPEN_OK).
    var opensStream: Bool {
        if case .frame(let frame) = self { frame.opensStream } else { false }
    }
}
