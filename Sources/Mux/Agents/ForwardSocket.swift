/// Where a forward takes its clients in, here (the local agent's `--listen`, `-L` and `-D`) or on the remote side
/// (`-R`): a TCP listener, or a UDP forward's socket.
enum ForwardSocket: Sendable {
    case stream(Listener)
    case datagrams(UDPForwarder)

    /// The address bound.
    var endpoint: Endpoint {
        switch self {
        case .stream(let listener): listener.endpoint
        case .datagrams(let forwarder): forwarder.endpoint
        }
    }

    /// Stops taking clients and frees the port; streams and flows in flight on TCP go on, UDP flows end.
    func stop() {
        switch self {
        case .stream(let listener): listener.stop()
        case .datagrams(let forwarder): forwarder.stop()
        }
    }

    /// Stops taking clients without waiting for the socket's thread, which frees the port soon after: for
    /// threads that must not block (a link's reader).
    func requestStop() {
        switch self {
        case .stream(let listener): listener.requestStop()
        case .datagrams(let forwarder): forwarder.requestStop()
        }
    }
}
