/// One connection the handshake gate holds until its hello verifies (`HandshakeGate`); owned by the gate
/// thread, like everything there.
struct PendingConnection {
    /// The hello being read, in the shape of the agent's transport.
    enum Opening {
        case native(PendingHello)
        /// With the connection to the cover started at accept, so that a stranger relayed to it meets a cover
        /// that has been waiting as long as the stranger has (its own timeouts then apply, not ours).
        case tls(PendingTLSHello, cover: Socket?)
    }

    let socket: Socket
    let peer: ResolvedAddress
    /// From a trusted balancer: its PROXY v2 header, until complete.
    var proxyHeader: ProxyHeaderReader?
    /// The client a trusted balancer's header named.
    var proxiedSource: StreamOrigin.Address?
    var opening: Opening
    /// Set once the hello failed (native transport): from then on input is read and dropped until the deadline.
    var rejection: HandshakeRejection?

    /// Whether any byte of a hello has arrived.
    var hasStarted: Bool {
        switch opening {
        case .native(let hello): hello.hasStarted
        case .tls(let hello, _): hello.hasStarted
        }
    }

    /// Whether, failing to authenticate, it goes to the cover: with the TLS transport, once past any PROXY header
    /// (a balancer's connection without a good header is closed, as with the native transport).
    var canGoToCover: Bool {
        guard case .tls = opening else { return false }
        return proxyHeader == nil && rejection == nil
    }

    /// Why it ends, now that its peer has closed or reset it. A balancer's header alone is a health check.
    var reasonOnceThePeerLeft: HandshakeRejection {
        rejection ?? (hasStarted ? .silent : .closedWithoutData)
    }

    /// Who the connection is from, for log lines.
    var peerEndpoint: Endpoint {
        proxiedSource.map { Endpoint(host: $0.host, port: $0.port) } ?? peer.endpoint
    }

    /// The bytes to read next: the rest of the PROXY header, then of the hello, or (once rejected) a
    /// buffer's worth to drop.
    func wanted(dropping bufferSize: Int) -> Int {
        if rejection != nil { return bufferSize }
        if let proxyHeader { return proxyHeader.missing }
        switch opening {
        case .native(let hello): return hello.missing
        case .tls(let hello, _): return hello.missing
        }
    }

    /// Closes the connection and the cover connection started for it, if any.
    func close() {
        if case .tls(_, let cover?) = opening { cover.close() }
        socket.close()
    }
}
