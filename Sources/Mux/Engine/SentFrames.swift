import DequeModule

/// The sequenced frames one side of a session has sent and the peer has not yet acknowledged, in the order sent
/// (docs/PROTOCOL.md §10): what it sends again on the session's next connection. DATA keeps its block, which goes
/// back to the pool only once acknowledged; so what is kept is bounded by the peer's windows (a peer grants credit
/// only for data it has processed, and acknowledges it in the same batch) and, for other frames, by how often
/// the peer acknowledges.
///
/// A value type, kept under the link's lock: the writer appends, the reader's ACKs remove.
struct SentFrames {
    /// The frames kept; the first is number `acknowledged + 1` of the session.
    private(set) var frames = Deque<OutboundFrame>()
    /// How many the peer has said it processed.
    private(set) var acknowledged: UInt64 = 0
    /// DATA payload bytes kept.
    private(set) var payloadBytes = 0
    /// How many of them a writer has handed to its connection: the most a peer can have received. The writer
    /// keeps frames before it seals them, so an acknowledgement beyond this one comes from a peer that lies, and
    /// must not make a block it is still sealing go back to the pool.
    private(set) var flushed: UInt64 = 0

    /// How many sequenced frames have been kept in the session, the last ones perhaps not yet sent.
    var sentCount: UInt64 { acknowledged + UInt64(frames.count) }

    /// Records that the frames up to number `count` have been handed to a connection.
    mutating func markFlushed(upTo count: UInt64) {
        flushed = max(flushed, count)
    }

    /// Keeps `frame`, the next sequenced frame sent.
    mutating func append(_ frame: OutboundFrame) {
        frames.append(frame)
        payloadBytes += frame.dataSize
    }

    /// Forgets the frames up to number `count` and returns the DATA blocks they held, for reuse; fails, changing
    /// nothing, when `count` is below what was acknowledged or above what was sent.
    mutating func acknowledge(upTo count: UInt64) -> Result<[DataBlock], LinkError> {
        guard count >= acknowledged else {
            return .failure(.protocolViolation("ACK of \(count) frames after an ACK of \(acknowledged)"))
        }
        guard count <= flushed else {
            return .failure(.protocolViolation("ACK of \(count) frames when \(flushed) were sent"))
        }
        var released: [DataBlock] = []
        while acknowledged < count {
            let frame = frames.removeFirst()
            payloadBytes -= frame.dataSize
            if case .data(_, let block) = frame { released.append(block) }
            acknowledged += 1
        }
        return .success(released)
    }
}
