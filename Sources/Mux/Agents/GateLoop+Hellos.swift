import Crypto
import Logging

/// Reading hellos and answering those that verify.
extension GateLoop {
    /// Reads what pending connection `fd` sent, up to what its hello still misses, and acts on it.
    mutating func receive(_ fd: Int32) {
        guard var connection = connections[fd] else { return }
        // A rejected connection's input is dropped: up to a buffer's worth per wake.
        let wanted = connection.wanted(dropping: buffer.count)
        let result = buffer.withUnsafeMutableBytes { raw in
            Result { () throws(SocketError) in
                try connection.socket.receive(into: UnsafeMutableRawBufferPointer(rebasing: raw[..<wanted]))
            }
        }
        let count: Int
        switch result {
        case .success(let received) where received > 0: count = received
        case .failure(let error) where error.isTimeout: return
        default:  // end of stream, or a reset: the peer gave up, or closed after its hello failed
            // A stranger who sent something and then closed its side is the cover's to answer.
            if connection.canGoToCover && connection.hasStarted {
                return relay(fd, connection, as: .silent, detail: "closed before completing a hello")
            }
            return close(fd, as: connection.reasonOnceThePeerLeft)
        }
        guard connection.rejection == nil else { return }
        if connection.proxyHeader != nil { return receiveProxyHeader(fd, connection, count: count) }
        let configuration = gate.configuration
        let now = UnixClock.nowMillis()
        switch connection.opening {
        case .native(var hello):
            let progress = hello.append(
                buffer[..<count], keys: configuration.keys, nowMillis: now, notBefore: configuration.notBefore)
            connection.opening = .native(hello)
            switch progress {
            case .incomplete: connections[fd] = connection
            case .rejected(let reason, let detail): reject(fd, connection, as: reason, detail: detail)
            case .complete(let verified):
                guard replays.admit(verified.identity, nowMillis: now) else {
                    return reject(fd, connection, as: .replayed, detail: "hello already answered")
                }
                answer(fd, connection, verified)
            }
        case .tls(var hello, let cover):
            let progress = hello.append(
                buffer[..<count], keys: configuration.keys, nowMillis: now, notBefore: configuration.notBefore)
            connection.opening = .tls(hello, cover: cover)
            switch progress {
            case .incomplete: connections[fd] = connection
            case .notOurs(let reason, let detail): relay(fd, connection, as: reason, detail: detail)
            case .complete(let verified, let fields):
                guard replays.admit(verified.identity, nowMillis: now) else {
                    return relay(fd, connection, as: .replayed, detail: "hello already answered")
                }
                answer(fd, connection, verified, fields)
            }
        }
    }

    /// Takes `count` bytes of a trusted balancer's PROXY v2 header; once it is whole, the client it names
    /// stands for the connection (and its per-source cap), and the hello follows.
    private mutating func receiveProxyHeader(_ fd: Int32, _ connection: PendingConnection, count: Int) {
        var connection = connection
        switch connection.proxyHeader!.append(buffer[..<count]) {
        case .incomplete: connections[fd] = connection
        case .rejected(let reason): reject(fd, connection, as: .badProxyHeader, detail: reason)
        case .complete(let origin):
            connection.proxyHeader = nil
            connection.proxiedSource = origin?.source
            let named = origin.map { ConnectionSource(addressBytes: $0.source.bytes) }
            connections[fd] = connection
            if let shed = table.reassign(fd, to: named ?? ConnectionSource(connection.peer)) { self.shed(shed) }
        }
    }

    /// Answers a native hello that verified and hands the connection over.
    private mutating func answer(_ fd: Int32, _ connection: PendingConnection, _ verified: VerifiedHello) {
        let response: (reply: [UInt8], keys: SessionKeys)
        do {
            response = try verified.respond()
        } catch .outOfGuardedMemory {
            failures.log(gate.logger, level: .error, "cannot answer a hello: \(CryptoError.outOfGuardedMemory)")
            return close(fd, as: .shed)
        } catch {
            return reject(fd, connection, as: .notAuthentic, detail: "\(error)")  // a weak ephemeral key
        }
        // A fresh connection's send buffer takes a hello whole; if it does not, the peer cannot be served.
        let sent = response.reply.withUnsafeBytes { raw in (try? connection.socket.sendAvailable(raw)) ?? -1 }
        guard sent == response.reply.count else { return close(fd, as: .silent) }
        handOver(fd, connection, channel: connection.socket, keys: response.keys)
    }

    /// Answers a TLS hello that verified, in the shape of the cover's answer for the name it asked for, and hands
    /// the connection over; the cover connection started for it is closed unused.
    private mutating func answer(
        _ fd: Int32, _ connection: PendingConnection, _ verified: TLSVerifiedHello, _ fields: ClientHelloFields
    ) {
        // A TLS hello is read only in TLS mode, which has a cover; closing keeps the connection from leaking anyway.
        guard let shape = gate.configuration.cover?.shape(for: fields.serverName) else { return close(fd, as: .silent) }
        guard let share = shape.fields.isHybrid ? fields.hybridX25519Share : fields.x25519Share else {
            return relay(fd, connection, as: .notAuthentic, detail: "no key share of the group the cover chooses")
        }
        let hello = fields.record
        let reply: [UInt8]
        let keys: SessionKeys
        do {
            let response = try verified.respond(to: hello[share])
            let random = randomBytes(32, using: &generator)
            let serverHello = shape.serverHello(
                random: random, sessionID: hello[fields.sessionIDRange], serverShare: response.serverShare,
                using: &generator)
            let header = response.flightHeader(
                serverRandom: random[...], transcript: hello + serverHello, remainder: shape.flightRemainder)
            reply = serverHello + shape.flight(header: header, using: &generator)
            keys = try response.sessionKeys(transcript: hello + reply)
        } catch .outOfGuardedMemory {
            failures.log(gate.logger, level: .error, "cannot answer a hello: \(CryptoError.outOfGuardedMemory)")
            return close(fd, as: .shed)
        } catch {
            return relay(fd, connection, as: .notAuthentic, detail: "\(error)")  // a weak ephemeral key
        }
        let sent = reply.withUnsafeBytes { raw in (try? connection.socket.sendAvailable(raw)) ?? -1 }
        guard sent >= 0 else { return close(fd, as: .silent) }
        forgetCover(of: connection)
        if case .tls(_, let cover?) = connection.opening { cover.close() }
        // What the send buffer did not take goes first when the link's writer sends.
        let channel = TLSRecordChannel(
            socket: connection.socket, prelude: Array(reply[sent...]), skippingPeerFinished: true)
        handOver(fd, connection, channel: channel, keys: keys)
    }

    /// Gives an authenticated connection to the agent, blocking again.
    private mutating func handOver(
        _ fd: Int32, _ connection: PendingConnection, channel: any LinkChannel, keys: SessionKeys
    ) {
        table.remove(fd)
        connections[fd] = nil
        epoll.forget(fd)
        connection.socket.setBlocking(true)
        onAuthenticated(connection.socket, channel, keys, connection.peerEndpoint)
    }

    /// Native transport: marks a connection whose hello failed; it is held silent until its deadline.
    private mutating func reject(
        _ fd: Int32, _ connection: PendingConnection, as reason: HandshakeRejection, detail: String
    ) {
        var connection = connection
        connection.rejection = reason
        if case .native = connection.opening { connection.opening = .native(PendingHello()) }  // keeps no buffer
        connection.proxyHeader = nil
        connections[fd] = connection
        gate.logger.debug("connection from \(connection.peerEndpoint) refused (\(reason)): \(detail)")
    }
}
