/// Identifies one stream within one link. Chosen by the side that opens the stream: the local agent uses odd
/// ids (1, 3, 5, …), the remote agent even ids (2, 4, …), each increasing and never reused within a link.
/// 0 addresses the link itself.
package typealias StreamID = UInt32

/// Identifies one UDP flow within one link, in a space of its own beside the streams': odd ids from the local
/// agent, even ones from the remote agent, each increasing and never reused within a link.
package typealias FlowID = UInt32

/// One multiplexer message (docs/PROTOCOL.md, "Frames"). On the wire its plaintext is
/// `kind (1 byte) ‖ stream id (4 bytes, big-endian) ‖ payload`, and the whole plaintext is sealed.
package enum Frame: Equatable, Sendable {
    /// Either side: a client connected from `origin` (`nil` when the opener does not know it); connect it to
    /// `target`. `window` is the credit the other side may send on this stream before it hears more.
    case open(StreamID, window: UInt32, target: StreamTarget, origin: StreamOrigin?)
    /// The answer to OPEN: the target connection is up. `window` is the opener's initial credit.
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
    /// Local → remote: listen on `address` for a reverse forward of `kind`, and open streams (for UDP, flows)
    /// naming `forward` for its clients.
    case listen(forward: UInt32, kind: TrafficKind, address: Endpoint)
    /// Remote → local: the answer to LISTEN for `forward`; `port` is the port bound (0 unless `.bound`). Also
    /// sent unasked, with `.notAllowed`, when a reload of the remote agent's rules closes the port.
    case listenResult(forward: UInt32, ListenResult, port: UInt16)
    /// Local → remote: stop listening for `forward` (a reload removed it); its streams in flight go on.
    case unlisten(forward: UInt32)
    /// Either side: `count` bytes (0 to `Limits.maxPadding`) that mean nothing and are dropped on receipt. Sent
    /// beside the opening frames of a link and of each stream, so that their sealed sizes vary (section 4.1).
    case padding(count: Int)
    /// Remote → local, the first frame on each link: the remote agent's instance, a random number it draws at
    /// start and sends on every link, so that a local agent can tell which of its links reach the same remote
    /// agent (behind a load balancer, where the address does not say).
    case agentID(UInt64)
    /// Either side: a client at `origin` sends datagrams to `target`; flow `id` carries them from now on, its first
    /// DATAGRAM right behind this frame, without waiting for an answer.
    case flowOpen(FlowID, target: StreamTarget, origin: StreamOrigin?)
    /// One datagram of a flow, whole: 0 to `Limits.maxDatagram` bytes, delivered as one datagram or not at all.
    case datagram(FlowID, [UInt8])
    /// Either side: the sender has forgotten the flow (idle, refused, evicted, or its agent stopping) and drops
    /// its datagrams from now on.
    case flowClose(FlowID, ResetReason)
    /// Either side: the sender has processed the first `count` sequenced frames the receiver sent in this session
    /// (section 10), which the receiver need not keep to send again any more.
    case ack(UInt64)
    /// Local → remote, the first frame on every connection: begin a new session on it, or continue one.
    case session(SessionRequest)
    /// Remote → local, the first frame on a connection whose SESSION asked to continue a session: whether it
    /// does, and how many of the local agent's sequenced frames the remote agent has processed.
    case resumed(ResumeResult, received: UInt64)

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
        case listen = 10
        case listenResult = 11
        case unlisten = 12
        case padding = 13
        case agentID = 14
        case flowOpen = 15
        case datagram = 16
        case flowClose = 17
        case ack = 18
        case session = 19
        case resumed = 20

        /// Whether frames of this kind address the link (stream id 0) rather than a stream.
        var isLinkLevel: Bool {
            switch self {
            case .ping, .pong, .goAway, .listen, .listenResult, .unlisten, .padding, .agentID, .ack, .session,
                .resumed:
                true
            case .open, .openOK, .data, .fin, .reset, .window, .flowOpen, .datagram, .flowClose: false
            }
        }

        /// Whether frames of this kind belong to the session rather than to the connection they cross (section
        /// 10): counted, kept until acknowledged, and sent again on the next connection if they may have been
        /// lost. Datagrams are not (UDP may lose them), nor what only concerns one connection.
        var isSequenced: Bool {
            switch self {
            case .open, .openOK, .data, .fin, .reset, .window, .goAway, .listen, .listenResult, .unlisten,
                .flowOpen, .flowClose:
                true
            case .ping, .pong, .padding, .agentID, .datagram, .ack, .session, .resumed: false
            }
        }
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
        case .listen: .listen
        case .listenResult: .listenResult
        case .unlisten: .unlisten
        case .padding: .padding
        case .agentID: .agentID
        case .flowOpen: .flowOpen
        case .datagram: .datagram
        case .flowClose: .flowClose
        case .ack: .ack
        case .session: .session
        case .resumed: .resumed
        }
    }

    /// Whether this frame opens a stream or a flow, or answers a stream's opening (OPEN, OPEN_OK, FLOW_OPEN).
    var isOpening: Bool {
        switch self {
        case .open, .openOK, .flowOpen: true
        default: false
        }
    }

    /// The stream or flow addressed, or 0 for link-level frames.
    var streamID: StreamID {
        switch self {
        case .open(let id, _, _, _), .openOK(let id, _), .data(let id, _), .fin(let id), .reset(let id, _),
            .window(let id, _), .flowOpen(let id, _, _), .datagram(let id, _), .flowClose(let id, _):
            id
        case .ping, .pong, .goAway, .listen, .listenResult, .unlisten, .padding, .agentID, .ack, .session, .resumed:
            0
        }
    }
}

/// Why a stream was reset, or its OPEN refused; carried as one byte. Unknown values from a newer peer read as
/// `.aborted`.
package enum ResetReason: UInt8, Error, Sendable, CaseIterable, CustomStringConvertible {
    /// An endpoint aborted the connection (RST, error, or its agent is stopping).
    case aborted = 1
    /// The target actively refused the connection.
    case targetRefused = 2
    /// No route to the target's host (or another connect failure not named below).
    case targetUnreachable = 3
    /// The remote agent is at its stream limit.
    case tooManyStreams = 4
    /// The peer broke the flow-control or half-close rules on this stream.
    case protocolError = 5
    /// The target is not one the answering agent's rules allow.
    case notAllowed = 6
    /// The target did not answer the connection within the connect timeout.
    case timedOut = 7
    /// The target's name did not resolve.
    case nameNotResolved = 8
    /// No route to the target's network.
    case networkUnreachable = 9

    package var description: String {
        switch self {
        case .aborted: "aborted"
        case .targetRefused: "target refused the connection"
        case .targetUnreachable: "target unreachable"
        case .tooManyStreams: "too many streams"
        case .protocolError: "protocol error"
        case .notAllowed: "not allowed"
        case .timedOut: "connection timed out"
        case .nameNotResolved: "name not resolved"
        case .networkUnreachable: "network unreachable"
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

/// The answer to a LISTEN request; carried as one byte. Unknown values read as `.failed`.
package enum ListenResult: UInt8, Sendable, CustomStringConvertible {
    /// The remote agent listens, and opens a stream for each client.
    case bound = 0
    /// No `--allow-listen` rule of the remote agent covers the address.
    case notAllowed = 1
    /// The port is taken, by another link's reverse forward or by another program.
    case addressInUse = 2
    /// Binding failed for another reason (an address not on that machine, no permission, out of resources).
    case failed = 3

    package var description: String {
        switch self {
        case .bound: "bound"
        case .notAllowed: "not allowed by the remote agent's --allow-listen rules"
        case .addressInUse: "address in use"
        case .failed: "failed"
        }
    }
}
