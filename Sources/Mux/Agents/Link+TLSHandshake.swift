import Crypto

/// How a link looks on the wire (docs/PROTOCOL.md §3).
public enum LinkTransport: Sendable, Equatable {
    /// tcptunnel's own: a printable hello each way, then sealed frames.
    case native
    /// TLS 1.3 in the shape of a browser visiting `serverName`, a real site the remote agent uses as its cover.
    case tls(serverName: String)
}

extension Link {
    /// The local agent's TLS-transport handshake: a browser's ClientHello naming `serverName`, authenticated in
    /// its random and session id; then the remote agent's ServerHello, ChangeCipherSpec and flight, whose first
    /// record proves it holds the key; then our ChangeCipherSpec and a record the size of a TLS Finished. All
    /// within `timeout` seconds. Returns the session keys; the socket then carries TLS application-data records.
    static func authenticateTLS(_ socket: Socket, key: PreSharedKey, serverName: String, timeout: Double)
        throws(LinkError) -> SessionKeys
    {
        let deadline = ContinuousClock.now + .seconds(timeout)
        var generator = SystemRandomNumberGenerator()
        let handshake: TLSClientHandshake
        var hello: BrowserClientHello
        do {
            handshake = try TLSClientHandshake(key: key)
            hello = BrowserClientHello(
                serverName: serverName, x25519Share: handshake.x25519Share,
                hybridX25519Share: handshake.hybridX25519Share,
                echKey: try TLSHelloAuthentication.unusedX25519PublicKey(), using: &generator)
        } catch {
            throw .handshakeFailed(error)
        }
        let random = randomBytes(32, using: &generator)
        hello.fill(random: random)
        let sessionID = handshake.sessionID(
            authenticating: hello.bytes, random: random[...], nowMillis: UnixClock.nowMillis())
        hello.fill(sessionID: sessionID)
        do {
            try socket.sendAll(hello.bytes)
        } catch {
            throw .socket(error)
        }

        let serverHello = try receiveRecord(socket, until: deadline)
        guard let fields = try? ServerHelloFields(record: serverHello),
            Array(serverHello[fields.sessionIDRange]) == sessionID
        else { throw .answeredAsCover }
        var answer = serverHello
        var record = try receiveRecord(socket, until: deadline)
        if TLSRecord.Header(record).isChangeCipherSpec {
            answer += record
            record = try receiveRecord(socket, until: deadline)
        }
        let header = TLSRecord.Header(record)
        guard header.isApplicationData, header.length >= TLSHelloAuthentication.flightHeaderSize else {
            throw .answeredAsCover
        }
        let flightHeader = record[TLSRecord.headerSize..<TLSRecord.headerSize + TLSHelloAuthentication.flightHeaderSize]
        let remainder: Int
        do {
            remainder = try handshake.flightRemainder(
                header: flightHeader, serverRandom: serverHello[fields.randomRange],
                transcript: hello.bytes + serverHello)
        } catch .handshakeNotAuthentic {
            throw .answeredAsCover
        } catch {
            throw .handshakeFailed(error)
        }
        answer += record
        answer += try receive(socket, count: remainder, until: deadline)
        let keys: SessionKeys
        do {
            keys = try handshake.sessionKeys(
                serverShare: serverHello[fields.x25519Range], usingHybridShare: fields.isHybrid,
                transcript: hello.bytes + answer)
        } catch {
            throw .handshakeFailed(error)
        }
        // A browser now sends its ChangeCipherSpec and its Finished; ours is random bytes of that size, which
        // the remote agent drops.
        let finishedLength = fields.cipherSuite == BrowserClientHello.sha384Suite ? 69 : 53
        do {
            try socket.sendAll(
                TLSRecord.changeCipherSpec + TLSRecord.header(.applicationData, length: finishedLength)
                    + randomBytes(finishedLength, using: &generator))
        } catch {
            throw .socket(error)
        }
        return keys
    }

    /// One whole TLS record, header included, before `deadline`.
    private static func receiveRecord(_ socket: Socket, until deadline: ContinuousClock.Instant) throws(LinkError)
        -> [UInt8]
    {
        let header = try receive(socket, count: TLSRecord.headerSize, until: deadline)
        let length = TLSRecord.Header(header).length
        guard length <= TLSRecord.maximumLength else { throw .answeredAsCover }
        return header + (try receive(socket, count: length, until: deadline))
    }
}
