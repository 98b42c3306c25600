import Glibc

extension Socket {
    /// Where this accepted connection came from and what it reached, for the OPEN that carries it; `nil` for a
    /// socket that is not TCP over IPv4 or IPv6. Out of line: its address buffers stay off the stream thread's
    /// stack, which holds the frame that calls it for the stream's whole life.
    var origin: StreamOrigin? {
        @inline(never) get {
            let (peer, local) = (peerAddress, localAddress)
            guard peer.family == AF_INET || peer.family == AF_INET6, peer.family == local.family else { return nil }
            return StreamOrigin(
                source: StreamOrigin.Address(bytes: peer.addressBytes, port: peer.port),
                destination: StreamOrigin.Address(bytes: local.addressBytes, port: local.port))
        }
    }
}

extension StreamOrigin? {
    /// The client's address and port as log lines show it (`192.0.2.7:51000`), or `?` if its socket did not say.
    var clientText: String { map { "\($0.source)" } ?? "?" }
}
