import Crypto

/// Why a link ended or could not be set up. Each case says what the operator can do next.
public enum LinkError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The remote agent's reply did not verify: it does not hold our key, or is not a tcptunnel agent.
    case handshakeFailed(CryptoError)
    /// The remote agent never answered our hello: it holds another key, our clocks differ by more than
    /// `ServerHandshake.maximumClockSkew` (or ours is behind and it restarted since our clock's time), it speaks
    /// another protocol version, it is overloaded by a flood and shed our connection, or it is not a tcptunnel
    /// remote agent.
    case noHandshakeReply
    /// Something answered our hello, but not as a remote agent of our transport does: it closed before a whole
    /// reply, or (native transport) its reply is not a hello made with our key. With the native transport that
    /// is a TLS or HTTP server, such as the cover a remote agent of the TLS transport relays us to.
    case unexpectedReply
    /// TLS transport: the remote agent answered as a TLS server that is not a tcptunnel agent holding our key,
    /// as the remote agent's cover site answers anyone whose hello it does not accept.
    case answeredAsCover
    /// The peer broke docs/PROTOCOL.md (tampered or replayed frames included); the link was closed.
    case protocolViolation(String)
    /// Nothing arrived from the peer for this many seconds, not even a keepalive answer.
    case peerSilent(seconds: Int)
    /// The peer accepted none of our bytes for this many seconds.
    case peerStalled(seconds: Int)
    /// A link thread could not be started.
    case resources(ThreadError)
    /// The peer closed the TCP connection without saying goodbye (crash, restart, or a middlebox).
    case closedByPeer
    /// The peer announced it is shutting down (GOAWAY).
    case peerShutDown
    /// This agent is shutting down.
    case localShutdown
    /// A socket call failed.
    case socket(SocketError)
    /// The remote agent's address did not resolve.
    case unresolvable(EndpointError)
    /// The peer sent no first frame (SESSION, or its answer) within the handshake timeout.
    case noSessionAnswer
    /// The link lost its connection and no new one continued its session within this many seconds.
    case notResumed(seconds: Int)
    /// The remote agent holds no such session any more: it restarted, or the session waited longer than its
    /// resume timeout, or was evicted to make room.
    case sessionUnknown
    /// Remote agent: the session waited to resume longest when the waiting sessions needed room.
    case evicted
    /// Remote agent: while the session waited to resume, a new link asked for one of its reverse forwards' ports
    /// (its local agent most likely restarted).
    case supplanted
    /// The link moved to a new connection on purpose (`--link-max-age`, `--link-max-bytes`).
    case rotated
    /// The local agent continued the session on another connection.
    case resumedElsewhere

    /// Whether the handshake failed: the remote agent holds another key, is not a tcptunnel agent, or did not answer.
    var isHandshakeFailure: Bool {
        switch self {
        case .handshakeFailed, .noHandshakeReply, .unexpectedReply, .answeredAsCover: true
        default: false
        }
    }

    /// Whether the link ended because one side chose to stop, rather than through a failure or an attack.
    public var isPlanned: Bool { self == .localShutdown || self == .peerShutDown }

    /// Whether a connection that ended for this reason may be replaced by a new one that continues the session:
    /// it broke in the network (closed, reset, silent, stalled), not by a rule of the protocol or on purpose.
    var isResumable: Bool {
        switch self {
        case .socket, .closedByPeer, .peerSilent, .peerStalled: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .handshakeFailed(let error): "handshake failed: \(error)"
        case .noHandshakeReply:
            "no handshake reply (the remote agent has another key, the clocks differ by more than "
                + "\(ServerHandshake.maximumClockSkew) s or ours is behind its start, it runs another protocol "
                + "version or another --transport, it is shedding connections under a flood, or it is not a "
                + "tcptunnel remote agent)"
        case .unexpectedReply:
            "the remote agent's port answered, but not as a remote agent of this --transport does (a remote agent "
                + "with --transport tls relays other hellos to its cover site; or the port is another server's)"
        case .answeredAsCover:
            "the remote agent answered as a TLS server that is not a tcptunnel agent holding this key: its cover "
                + "site answers hellos it refuses (another key, clocks more than "
                + "\(ServerHandshake.maximumClockSkew) s apart or ours behind its start, another protocol version), "
                + "or --remote is not a tcptunnel remote agent"
        case .protocolViolation(let reason): "protocol violation: \(reason)"
        case .peerSilent(let seconds): "peer silent for \(seconds) s"
        case .peerStalled(let seconds): "peer accepted no data for \(seconds) s"
        case .resources(let error): "\(error)"
        case .closedByPeer: "connection closed by peer"
        case .peerShutDown: "peer is shutting down"
        case .localShutdown: "shutting down"
        case .socket(let error): "\(error)"
        case .unresolvable(let error): "\(error)"
        case .noSessionAnswer: "the peer did not begin or answer the session within the handshake timeout"
        case .notResumed(let seconds): "its connection was lost and not resumed within \(seconds) s (--resume-timeout)"
        case .sessionUnknown:
            "the remote agent no longer holds this link's session (it restarted, or the session outlived its "
                + "--resume-timeout or was evicted by --max-detached-sessions or --max-detached-bytes)"
        case .evicted:
            "its session waited longest to resume when newer ones needed room (--max-detached-sessions, "
                + "--max-detached-bytes)"
        case .supplanted:
            "a new link asked for its reverse forward's port while its session waited to resume (its local agent "
                + "restarted)"
        case .rotated: "moved to a fresh connection (--link-max-age or --link-max-bytes)"
        case .resumedElsewhere: "the local agent continued the session on a new connection"
        }
    }
}
