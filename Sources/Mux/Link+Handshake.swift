import Crypto
import Foundation
import Logging

extension Link {
    /// Local role: connects to the remote agent, authenticates both ways, and returns the running link.
    /// Blocks for at most the connect timeout plus the handshake timeout.
    static func connect(
        to remote: Endpoint, key: PreSharedKey, settings: TunnelSettings, limiter: StreamLimiter, logger: Logger,
        onClose: @escaping @Sendable (Link, LinkError) -> Void
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
            socket.setReceiveTimeout(seconds: settings.handshakeTimeout)
            let handshake = ClientHandshake(key: key, now: unixTime())
            do {
                try socket.sendAll(handshake.hello)
            } catch {
                throw .socket(error)
            }
            let reply: [UInt8]
            do {
                reply = try receiveHandshake(socket, count: HandshakeMessage.serverHelloSize)
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
                logger: logger, onClose: onClose)
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
    ///
    /// A peer that does not complete a valid client hello gets no byte back: the connection is held, its input
    /// discarded, until the handshake timeout, whatever it sent, and then closed; so a scanner cannot tell
    /// this port from one that just never answers. The socket is closed when this throws.
    static func accept(
        _ socket: Socket, key: PreSharedKey, settings: TunnelSettings, limiter: StreamLimiter, logger: Logger,
        onOpen: @escaping @Sendable (Stream) -> Void, onClose: @escaping @Sendable (Link, LinkError) -> Void
    ) throws(LinkError) -> Link {
        let deadline = Date(timeIntervalSinceNow: settings.handshakeTimeout)
        do throws(LinkError) {
            socket.setReceiveTimeout(seconds: settings.handshakeTimeout)
            let hello = try receiveHandshake(socket, count: HandshakeMessage.clientHelloSize)
            let response: (reply: [UInt8], keys: SessionKeys)
            do {
                response = try ServerHandshake.respond(to: hello, key: key, now: unixTime())
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
                limiter: limiter, logger: logger, onOpen: onOpen, onClose: onClose)
            try link.start()
            return link
        } catch .resources(let error) {
            throw .resources(error)  // `start` closed the socket
        } catch {
            discardInput(socket, until: deadline)
            socket.close()
            throw error
        }
    }

    private static func receiveHandshake(_ socket: Socket, count: Int) throws(LinkError) -> [UInt8] {
        let bytes: [UInt8]
        do {
            bytes = try socket.receiveExactly(count)
        } catch {
            throw error.code == EAGAIN || error.code == EWOULDBLOCK ? .handshakeIncomplete : .socket(error)
        }
        guard bytes.count == count else { throw .handshakeIncomplete }
        return bytes
    }

    private static func discardInput(_ socket: Socket, until deadline: Date) {
        var sink = [UInt8](repeating: 0, count: 4096)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return }
            socket.setReceiveTimeout(seconds: remaining)
            let count = try? sink.withUnsafeMutableBytes { raw in
                Result { () throws(SocketError) in try socket.receive(into: raw) }
            }.get()
            guard let count, count > 0 else { return }
        }
    }

    private static func unixTime() -> UInt64 {
        UInt64(max(0, time(nil)))
    }
}
