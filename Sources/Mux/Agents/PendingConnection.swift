/// One connection the handshake gate holds until its hello verifies (`HandshakeGate`); owned by the gate
/// thread, like everything there.
struct PendingConnection {
    let socket: Socket
    let peer: ResolvedAddress
    /// From a trusted balancer: its PROXY v2 header, until complete.
    var proxyHeader: ProxyHeaderReader?
    /// The client a trusted balancer's header named.
    var proxiedSource: StreamOrigin.Address?
    var hello = PendingHello()
    /// Set once the hello failed: from then on input is read and dropped until the deadline.
    var rejection: HandshakeRejection?

    /// Why it ends, now that its peer has closed or reset it. A balancer's header alone is a health check.
    var reasonOnceThePeerLeft: HandshakeRejection {
        rejection ?? (hello.hasStarted ? .silent : .closedWithoutData)
    }

    /// Who the connection is from, for log lines.
    var peerEndpoint: Endpoint {
        proxiedSource.map { Endpoint(host: $0.host, port: $0.port) } ?? peer.endpoint
    }

    /// The bytes to read next: the rest of the PROXY header, then of the hello, or (once rejected) a
    /// buffer's worth to drop.
    func wanted(dropping bufferSize: Int) -> Int {
        rejection != nil ? bufferSize : proxyHeader?.missing ?? hello.missing
    }
}
