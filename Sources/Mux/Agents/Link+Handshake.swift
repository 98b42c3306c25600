import Crypto
import Logging

extension Link {
    /// Local role: connects to the remote agent, authenticates both ways, begins a new session, and returns the
    /// running link, which logs and metrics call link `number`. Blocks for at most the connect timeout plus the
    /// handshake timeout.
    static func connect(
        to remote: Endpoint, number: Int, key: PreSharedKey, transport: LinkTransport, settings: TunnelSettings,
        limiter: StreamLimiter, agentBudget: ReceiveBudget, metrics: AgentMetrics, logger: Logger,
        delegate: any LinkDelegate
    ) throws(LinkError) -> Link {
        let (connection, resumption) = try openConnection(
            to: remote, key: key, transport: transport, settings: settings)
        do throws(LinkError) {
            try connection.sendOpening([.session(.begin)])
        } catch {
            connection.channel.close()
            throw error
        }
        let link = Link(
            connection: connection, resumption: resumption, role: .local, settings: settings.link, slots: limiter,
            agentBudget: agentBudget,
            metrics: metrics.linkMetrics(number: number, remote: remote, key: key.fingerprint),
            logger: logger.withMetadata("link", "\(number)"), delegate: delegate, name: "link \(number) to \(remote)")
        try link.start()  // on failure, the link has closed the connection
        return link
    }

    /// Local role: connects to the remote agent and authenticates both ways, for a new session or to continue
    /// one; returns the connection, nothing sent on it yet, and the session it would begin. Blocks for at most
    /// the connect timeout plus the handshake timeout.
    static func openConnection(
        to remote: Endpoint, key: PreSharedKey, transport: LinkTransport, settings: TunnelSettings
    ) throws(LinkError) -> (LinkConnection, SessionResumption) {
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
            let keys: SessionKeys
            let channel: any LinkChannel
            switch transport {
            case .native:
                keys = try authenticate(socket, key: key, timeout: settings.handshakeTimeout)
                channel = socket
            case .tls(let serverName):
                keys = try authenticateTLS(
                    socket, key: key, serverName: serverName, timeout: settings.handshakeTimeout)
                channel = TLSRecordChannel(socket: socket)
            }
            socket.prepareForLink()
            let connection = LinkConnection(
                channel: channel, peer: socket.peerEndpoint, keys: keys.clientSide(), binding: keys.binding)
            return (connection, keys.resumption)
        } catch {
            socket.close()
            throw error
        }
    }

    /// Sends a client hello and reads the server hello (its fixed part, then the padding it announces), all
    /// within `timeout` seconds.
    private static func authenticate(_ socket: Socket, key: PreSharedKey, timeout: Double) throws(LinkError)
        -> SessionKeys
    {
        let deadline = ContinuousClock.now + .seconds(timeout)
        let handshake: ClientHandshake
        do {
            handshake = try ClientHandshake(key: key, nowMillis: UnixClock.nowMillis())
        } catch {
            throw .handshakeFailed(error)
        }
        do {
            try socket.sendAll(handshake.hello)
        } catch {
            throw .socket(error)
        }
        var reply = try receive(socket, count: HandshakeMessage.serverHeaderSize, until: deadline)
        let size: Int
        do {
            size = try handshake.serverHelloSize(header: reply[...])
        } catch .handshakeNotAuthentic {
            // A remote agent answers only a hello it verified, so an answer that does not verify is someone
            // else's: a TLS server (a remote agent of the TLS transport relays us to its cover), an HTTP server.
            throw .unexpectedReply
        } catch {
            throw .handshakeFailed(error)
        }
        reply += try receive(socket, count: size - reply.count, until: deadline)
        do {
            return try handshake.receive(serverHello: reply)
        } catch {
            throw .handshakeFailed(error)
        }
    }

    /// Reads exactly `count` bytes before `deadline`. Silence or a close before any arrive is
    /// `.noHandshakeReply`: a remote agent says nothing to a hello it refuses. A close after some is
    /// `.unexpectedReply`: something answered that is not a remote agent of this transport.
    static func receive(_ socket: Socket, count: Int, until deadline: ContinuousClock.Instant)
        throws(LinkError) -> [UInt8]
    {
        do {
            return try socket.receive(exactly: count, before: deadline)
        } catch .failed(let error) {
            throw .socket(error)
        } catch .closed(let received) where received > 0 {
            throw .unexpectedReply
        } catch {
            throw .noHandshakeReply
        }
    }
}

extension Socket {
    /// The options every link socket gets, on either agent: no Nagle delay (the writer batches frames itself),
    /// and a small unsent backlog in the kernel, so that queued frames wait where the writer schedules them.
    func prepareForLink() {
        setNoDelay()
        setNotSentLowWater(Limits.linkNotSentLowWater)
    }
}
