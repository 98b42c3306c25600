/// Identifies one stream within one link. Chosen by the local agent, starting at 1 and increasing;
/// never reused within a link. 0 addresses the link itself.
package typealias StreamID = UInt32

/// One multiplexer message (docs/PROTOCOL.md, "Frames"). On the wire its plaintext is
/// `kind (1 byte) ‖ stream id (4 bytes, big-endian) ‖ payload`, and the whole plaintext is sealed.
package enum Frame: Equatable, Sendable {
    /// Local → remote: a client connected; open a connection to the target. `window` is the credit the
    /// remote side may send on this stream before it hears more.
    case open(StreamID, window: UInt32)
    /// Remote → local: the target connection is up. `window` is the local side's initial credit.
    case openOK(StreamID, window: UInt32)
    /// Stream bytes, 1 to `Limits.maxDataPayload` of them, counted against the receiver's window.
    case data(StreamID, [UInt8])
    /// Half-close: the sender will send no more DATA on this stream. The other direction goes on.
    case fin(StreamID)
    /// Abort: the stream is gone in both directions; its id is free once both ends have seen this.
    case reset(StreamID, ResetReason)
    /// The receiver consumed bytes: the sender may send `increment` more.
    case window(StreamID, increment: UInt32)
    /// Liveness and round-trip probe; the peer answers PONG with the same value.
    case ping(UInt64)
    /// The answer to PING, echoing its value.
    case pong(UInt64)
    /// The sender is closing the link on purpose; no new streams will be accepted.
    case goAway(GoAwayReason)

    /// The wire byte of each kind.
    package enum Kind: UInt8 {
        case open = 1
        case openOK = 2
        case data = 3
        case fin = 4
        case reset = 5
        case window = 6
        case ping = 7
        case pong = 8
        case goAway = 9
    }

    /// Plaintext header size: kind and stream id.
    package static let headerSize = 5

    var kind: Kind {
        switch self {
        case .open: .open
        case .openOK: .openOK
        case .data: .data
        case .fin: .fin
        case .reset: .reset
        case .window: .window
        case .ping: .ping
        case .pong: .pong
        case .goAway: .goAway
        }
    }

    /// The stream addressed, or 0 for link-level frames.
    var streamID: StreamID {
        switch self {
        case .open(let id, _), .openOK(let id, _), .data(let id, _), .fin(let id), .reset(let id, _),
            .window(let id, _):
            id
        case .ping, .pong, .goAway: 0
        }
    }
}

/// Why a stream was reset; carried as one byte. Unknown values from a newer peer read as `.aborted`.
package enum ResetReason: UInt8, Sendable, CustomStringConvertible {
    /// An endpoint aborted the connection (RST, error, or its agent is stopping).
    case aborted = 1
    /// The target actively refused the connection.
    case targetRefused = 2
    /// The target could not be reached in time, or its name did not resolve.
    case targetUnreachable = 3
    /// The remote agent is at its stream limit.
    case tooManyStreams = 4
    /// The peer broke the flow-control or half-close rules on this stream.
    case protocolError = 5

    package var description: String {
        switch self {
        case .aborted: "aborted"
        case .targetRefused: "target refused the connection"
        case .targetUnreachable: "target unreachable"
        case .tooManyStreams: "too many streams"
        case .protocolError: "protocol error"
        }
    }
}

/// Why a link is being closed on purpose; carried as one byte.
package enum GoAwayReason: UInt8, Sendable {
    /// The agent is shutting down (SIGINT/SIGTERM).
    case shutdown = 1
    /// Anything this version does not know.
    case other = 255
}
