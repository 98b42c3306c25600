import Glibc
import Logging

/// Answers the streams a peer opens: on a thread per stream, connects the target, answers OPEN, and relays.
enum StreamAcceptor {
    /// Starts `stream`'s thread, which runs `connect` and then either relays (its thread becomes the uplink,
    /// counting into `forwardBytes` too when given) or refuses the stream with the reason `connect` gave. Called
    /// on the link's reader thread; never blocks.
    static func start(
        _ stream: Stream, counting forwardBytes: StreamCounters? = nil, logger: Logger,
        connect: @escaping @Sendable () -> Result<Socket, ResetReason>
    ) {
        do {
            try WorkerPool.shared.run(named: "stream-\(stream.id)-up") {
                switch connect() {
                case .success(let socket):
                    if stream.accept(socket, counting: forwardBytes) { stream.run() } else { stream.abandon() }
                case .failure(let reason): stream.refuse(reason)
                }
            }
        } catch {
            logger.error("resetting stream \(stream.id): \(error)")
            stream.refuse(.aborted)
        }
    }

    /// Connects to the first of `addresses` that answers within `timeout` seconds each, then, with
    /// `proxyProtocol`, sends it the PROXY header for a client from `origin` before anything else.
    static func connect(
        to addresses: [ResolvedAddress], timeout: Double, proxyProtocol: ProxyProtocolVersion?,
        origin: StreamOrigin?
    ) -> Result<Socket, SocketError> {
        Result { () throws(SocketError) in
            let socket = try Socket.connect(to: addresses, timeout: timeout)
            guard let proxyProtocol else { return socket }
            do throws(SocketError) {
                try socket.sendAll(ProxyHeader.encode(origin, version: proxyProtocol))
            } catch {
                socket.close()
                throw error
            }
            return socket
        }
    }

    /// The reason an OPEN is refused for when the target's connect failed with `error`.
    static func reason(for error: SocketError) -> ResetReason {
        switch error.code {
        case ECONNREFUSED: .targetRefused
        case ETIMEDOUT: .timedOut
        case ENETUNREACH: .networkUnreachable
        default: .targetUnreachable
        }
    }
}
