/// A frame for the link's writer to seal: DATA in a block of its own, sealed from where the stream received
/// it, a datagram with the time it was queued, or any other frame, encoded first.
enum OutboundFrame {
    case frame(Frame)
    case data(StreamID, DataBlock)
    case datagram(QueuedDatagram)

    /// The frame's plaintext size.
    var plaintextSize: Int {
        switch self {
        case .frame(let frame): FrameCodec.encodedSize(of: frame)
        case .data(_, let block): Frame.headerSize + block.count
        case .datagram(let datagram): Frame.headerSize + datagram.payload.count
        }
    }

    /// Payload bytes of DATA or a datagram, which count against the writer's batch; 0 for any other frame.
    var dataSize: Int {
        switch self {
        case .frame: 0
        case .data(_, let block): block.count
        case .datagram(let datagram): datagram.payload.count
        }
    }

    /// Whether the frame belongs to the session, counted and kept until acknowledged (`Frame.Kind.isSequenced`).
    var isSequenced: Bool {
        switch self {
        case .frame(let frame): frame.kind.isSequenced
        case .data: true
        case .datagram: false
        }
    }

    /// Whether the frame is one of a stream's opening exchange or opens a flow (OPEN, OPEN_OK, FLOW_OPEN).
    var isOpening: Bool {
        if case .frame(let frame) = self { frame.isOpening } else { false }
    }
}
