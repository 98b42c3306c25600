import CLinux
import Crypto
import Glibc
import Logging

/// The remote agent's pre-authentication stage: accepts connections on the link port and holds each one, on a
/// single thread, until its hello verifies; only then does the connection get a link and threads.
///
/// What a stranger can make it spend is bounded and small: a pending connection is a descriptor, a table entry
/// and, once bytes arrive, a buffer of at most one hello (1.1 KiB; a TLS-transport hello, 4 KiB). The hello is
/// checked with one AEAD open per key before anything else, and no X25519 runs for a peer without the key.
/// Nothing is ever sent before a hello verifies. With the native transport every failure (silence, wrong key,
/// stale clock, replay, shedding) ends in the same close, at the connection's deadline (drawn at accept, 0.5 to
/// 1.5 handshake timeouts), or as soon as the peer closes its side, or when a flood sheds it. With the TLS
/// transport a connection that is not a local agent's is relayed to the cover instead (`CoverRelay`), on this
/// same thread, so that it gets the cover's real answers.
///
/// Threads: the gate thread (`GateLoop`) owns the listening socket, every pending connection and relay, the
/// replay cache and the report; no other thread touches them. `stop()` wakes it by shutting the listening
/// socket down (`ServedSocket`).
final class HandshakeGate: Sendable {
    /// What the gate admits, and for how long.
    struct Configuration: Sendable {
        /// The keys local agents may use (two during a rotation).
        var keys: [PreSharedKey]
        /// Seconds a connection has to deliver its hello (its deadline is 0.5 to 1.5 times this).
        var handshakeTimeout: Double
        /// Connections pending at once, from everyone.
        var maxPending: Int
        /// Connections pending at once from one IPv4 address or IPv6 /64.
        var maxPendingPerSource: Int
        /// Unix milliseconds: hellos stamped earlier are refused, so that a hello recorded before this agent
        /// started (and so missing from its replay cache) is never answered.
        var notBefore: UInt64
        /// Balancers whose connections start with a PROXY v2 header naming the real peer.
        var trustedBalancers: TrustedBalancers = .none
        /// The TLS transport's cover: hellos are TLS ClientHellos, answered in its shape, and strangers are
        /// relayed to it. `nil` for the native transport.
        var cover: CoverShapes?
    }

    /// Called on the gate thread with a connection whose handshake completed; it now belongs to the callee,
    /// blocking again, with the channel the link runs over (the socket, or TLS records on it), the session keys
    /// it agreed and its peer (the client a trusted balancer named, or the connection's own peer).
    typealias Authenticated = @Sendable (Socket, any LinkChannel, SessionKeys, Endpoint) -> Void

    let listening: ServedSocket
    let configuration: Configuration
    let metrics: AgentMetrics
    let logger: Logger

    /// A gate for `listening`, which it owns from now on (and closes when it stops).
    init(listening: Socket, configuration: Configuration, metrics: AgentMetrics, logger: Logger) {
        self.listening = ServedSocket(listening)
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
    }

    /// Starts the gate thread, which hands each connection that authenticates to `onAuthenticated`. Call once.
    /// On failure the listening socket is closed.
    func start(onAuthenticated: @escaping Authenticated) throws(AgentError) {
        warnIfDescriptorsAreShort()
        listening.socket.setBlocking(false)
        let epoll: Epoll
        do {
            epoll = try Epoll()
            try epoll.watch(listening.socket.fd, token: GateLoop.listenerToken)
        } catch {
            listening.stop()
            throw .systemCall(error)
        }
        do {
            try listening.start(named: "handshakes") { [self] in
                var loop = GateLoop(gate: self, epoll: epoll, onAuthenticated: onAuthenticated)
                loop.run()
                epoll.close()
            }
        } catch {
            epoll.close()
            listening.stop()
            throw .resources(error)
        }
    }

    /// Says so at start when the process may open fewer descriptors than the pending table can hold: the gate
    /// then sheds when descriptors run out rather than at `--max-pending`.
    private func warnIfDescriptorsAreShort() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        // With the TLS transport a pending connection has its cover connection too, and so does each relay.
        let isRelaying = configuration.cover != nil
        let wanted =
            UInt64(configuration.maxPending) * (isRelaying ? 2 : 1)
            + (isRelaying ? 2 * UInt64(Limits.maxCoverRelays) : 0)
            + Limits.descriptorHeadroom
        guard limit.rlim_cur < wanted else { return }
        let message =
            "the open-file limit (\(limit.rlim_cur)) is below what --max-pending (\(configuration.maxPending)) "
            + "needs plus room for links and streams: under a flood, pending connections will be shed when "
            + "descriptors run out (raise LimitNOFILE= or ulimit -n)"
        logger.warning("\(message)")
    }

    /// Stops accepting, closes every pending connection and relay, and waits (briefly) for the gate thread.
    /// Idempotent.
    func stop() {
        listening.stop()
    }
}
