import Crypto
import Foundation
import Logging

extension Link {
    /// Local role: connects to the remote agent, authenticates both ways, and returns the running link.
    /// Blocks for at most the connect timeout plus the handshake timeout.
    static func connect(
        to remote: Endpoint, key: PreSharedKey, settings: TunnelSettings, limiter: StreamLimiter,
        metrics: AgentMetrics, logger: Logger, delegate: any LinkDelegate
    ) throws(LinkError) -> Link {
        let addresses: [ResolvedAddress]
        do {
            addresses = try remote.resolve()
        } catch {
            throw .unresolvable(error)
        }
        let socket: Socket
        do {
            socket = try Socket.connect(to: addresses, timeout: settings.connectTimeout)
        } catch {
            throw .socket(error)
        }
        do throws(LinkError) {
            let handshake: ClientHandshake
            do {
                handshake = try ClientHandshake(key: key, now: unixTime())
            } catch {
                throw .handshakeFailed(error)
            }
            do {
                try socket.sendAll(handshake.hello)
            } catch {
                throw .socket(error)
            }
            let reply: [UInt8]
            do {
                reply = try receiveHandshake(
                    socket, count: HandshakeMessage.serverHelloSize,
                    until: Date(timeIntervalSinceNow: settings.handshakeTimeout))
            } catch .handshakeIncomplete {
                throw .noHandshakeReply
            }
            let keys: SessionKeys
            do {
                keys = try handshake.receive(serverHello: reply)
            } catch {
                throw .handshakeFailed(error)
            }
            let link = Link(
                socket: socket, keys: keys.clientSide(), role: .local, settings: settings, limiter: limiter,
                metrics: metrics, logger: logger, delegate: delegate)
            try link.start()
            return link
        } catch .resources(let error) {
            throw .resources(error)  // `start` closed the socket
        } catch {
            socket.close()
            throw error
        }
    }

    /// Remote role: authenticates a connection accepted from a would-be local agent and returns the running link.
    /// `keys` holds one key, or two during a key rotation; `replays` remembers the hellos already answered.
    ///
    /// A peer that does not send a valid, fresh client hello gets no byte back, whatever it sent (random bytes, a
    /// request of another protocol, a truncated or replayed hello, or nothing): its input is discarded until a
    /// randomised deadline, 0.5 to 1.5 times the handshake timeout after it connected, and then the connection
    /// is closed. The close time therefore says nothing about what was sent, and a scanner cannot tell this port
    /// from one that never answers. The socket is closed when this throws.
    static func accept(
        _ socket: Socket, keys: [PreSharedKey], replays: Locked<HelloReplayCache>, settings: TunnelSettings,
        limiter: StreamLimiter, metrics: AgentMetrics, logger: Logger, delegate: any LinkDelegate
    ) throws(LinkError) -> Link {
        let deadline = Date(timeIntervalSinceNow: settings.handshakeTimeout * Double.random(in: 0.5...1.5))
        do throws(LinkError) {
            let hello = try receiveHandshake(socket, count: HandshakeMessage.clientHelloSize, until: deadline)
            let now = unixTime()
            let verified: VerifiedHello
            do {
                verified = try ServerHandshake.verify(hello, keys: keys, now: now)
            } catch {
                throw .handshakeFailed(error)
            }
            guard replays.withLock({ $0.admit(verified.identity, now: now) }) else { throw .handshakeReplayed }
            let response: (reply: [UInt8], keys: SessionKeys)
            do {
                response = try verified.respond()
            } catch {
                throw .handshakeFailed(error)
            }
            do {
                try socket.sendAll(response.reply)
            } catch {
                throw .socket(error)
            }
            let link = Link(
                socket: socket, keys: response.keys.serverSide(), role: .remote, settings: settings,
                limiter: limiter, metrics: metrics, logger: logger, delegate: delegate)
            try link.start()
            return link
        } catch .resources(let error) {
            throw .resources(error)  // `start` closed the socket
        } catch {
            holdSilently(socket, until: deadline)
            socket.close()
            throw error
        }
    }

    /// Reads exactly `count` bytes before `deadline`; a peer trickling bytes cannot stretch it.
    private static func receiveHandshake(_ socket: Socket, count: Int, until deadline: Date) throws(LinkError)
        -> [UInt8]
    {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw .handshakeIncomplete }
            socket.setReceiveTimeout(seconds: remaining)
            let received = bytes.withUnsafeMutableBytes { raw in
                Result { () throws(SocketError) in
                    try socket.receive(into: UnsafeMutableRawBufferPointer(rebasing: raw[filled...]))
                }
            }
            switch received {
            case .success(0): throw .handshakeIncomplete
            case .success(let n): filled += n
            case .failure(let error): throw error.isTimeout ? .handshakeIncomplete : .socket(error)
            }
        }
        return bytes
    }

    /// Discards whatever arrives until `deadline`, and waits out the rest if the peer closes first.
    private static func holdSilently(_ socket: Socket, until deadline: Date) {
        var sink = [UInt8](repeating: 0, count: 4096)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return }
            socket.setReceiveTimeout(seconds: remaining)
            let count = try? sink.withUnsafeMutableBytes { raw in
                Result { () throws(SocketError) in try socket.receive(into: raw) }
            }.get()
            if count == 0 { return Thread.sleep(forTimeInterval: max(0, deadline.timeIntervalSinceNow)) }
        }
    }

    private static func unixTime() -> UInt64 {
        UInt64(max(0, time(nil)))
    }
}
