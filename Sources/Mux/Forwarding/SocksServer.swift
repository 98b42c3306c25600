/// The server side of a SOCKS5 handshake (RFC 1928, with RFC 1929 username/password), on a client socket
/// the calling thread owns. CONNECT and UDP ASSOCIATE are offered; the reply to CONNECT is sent once the tunnel
/// knows how the connection went (`reply(_:)`), so that its code tells the client what happened, and the reply to
/// UDP ASSOCIATE once the relay's socket is bound (`replyAssociated(relay:)`).
package struct SocksServer {
    /// What the client asked for.
    package enum Request: Equatable, Sendable {
        /// CONNECT: a stream to this target.
        case connect(Endpoint)
        /// UDP ASSOCIATE: a relay for its datagrams, each naming its own target (RFC 1928 §7). The address the
        /// client says it will send from is not used: datagrams are taken from its control connection's address.
        case associate
    }

    /// SOCKS5 reply codes (RFC 1928 §6).
    package enum ReplyCode: UInt8 {
        case succeeded = 0
        case generalFailure = 1
        case notAllowedByRuleset = 2
        case networkUnreachable = 3
        case hostUnreachable = 4
        case connectionRefused = 5
        case ttlExpired = 6
        case commandNotSupported = 7
        case addressTypeNotSupported = 8

        /// The code for a stream the tunnel could not open.
        init(_ outcome: StreamOpenOutcome) {
            switch outcome {
            case .established: self = .succeeded
            case .refused(.notAllowed): self = .notAllowedByRuleset
            case .refused(.networkUnreachable): self = .networkUnreachable
            case .refused(.targetUnreachable), .refused(.nameNotResolved): self = .hostUnreachable
            case .refused(.targetRefused): self = .connectionRefused
            case .refused(.timedOut): self = .ttlExpired
            case .refused, .linkClosed, .unanswered: self = .generalFailure
            }
        }
    }

    /// Why a handshake ended without a target. Whatever the client was owed has been sent.
    package enum Failure: Error, Equatable, CustomStringConvertible {
        /// The client went away, sent nothing in time, or sent what no SOCKS5 client sends.
        case malformed(String)
        /// The client offered no method we accept (no authentication, or username/password when required).
        case noAcceptableMethod
        /// Wrong user name or password.
        case authenticationFailed
        /// A command other than CONNECT and UDP ASSOCIATE (BIND), answered with `commandNotSupported`.
        case unsupportedCommand(UInt8)
        /// An address type other than IPv4, IPv6 or a name, answered with `addressTypeNotSupported`.
        case unsupportedAddressType(UInt8)
        /// A name no resolver would take, answered with `hostUnreachable`.
        case badName
        /// The whole handshake did not arrive within its deadline (seconds given); the client is closed.
        case timedOut(seconds: Double)

        package var description: String {
            switch self {
            case .malformed(let reason): "malformed SOCKS handshake: \(reason)"
            case .noAcceptableMethod: "no acceptable SOCKS authentication method offered"
            case .authenticationFailed: "SOCKS authentication failed"
            case .unsupportedCommand(let command):
                "SOCKS command \(command) not supported (only CONNECT and UDP ASSOCIATE)"
            case .unsupportedAddressType(let type): "SOCKS address type \(type) not supported"
            case .badName: "SOCKS target name is not a DNS name"
            case .timedOut(let seconds):
                "SOCKS handshake not completed within \(seconds == seconds.rounded() ? "\(Int(seconds))" : "\(seconds)") s "
                    + "(--socks-handshake-timeout)"
            }
        }
    }

    private let client: Socket
    private let credentials: SocksCredentials?
    private let timeout: Double
    /// When the whole handshake must be done: a client sending one byte at a time cannot stretch it.
    private let deadline: ContinuousClock.Instant

    /// A handshake with `client`, requiring `credentials` when given, which must be complete (greeting,
    /// authentication and request together) within `timeout` seconds from now.
    package init(client: Socket, credentials: SocksCredentials?, timeout: Double) {
        self.client = client
        self.credentials = credentials
        self.timeout = timeout
        deadline = .now + .seconds(timeout)
    }

    /// Runs the handshake up to the request and returns it. Leaves the reply to `reply(_:)` or
    /// `replyAssociated(relay:)`.
    package func negotiate() throws(Failure) -> Request {
        try selectMethod()
        if credentials != nil { try authenticate() }
        return try readRequest()
    }

    /// Sends the reply to the CONNECT request. Returns whether the client got it.
    @discardableResult
    func reply(_ code: ReplyCode) -> Bool {
        // BND.ADDR and BND.PORT are those of the remote agent's connection, which the client has no use for
        // (and which would tell it about the far side); 0.0.0.0:0, as most SOCKS servers send.
        send([5, code.rawValue, 0, 1, 0, 0, 0, 0, 0, 0])
    }

    /// Sends the success reply to UDP ASSOCIATE, naming `relay`, the UDP address the client sends its datagrams
    /// to. Returns whether the client got it.
    @discardableResult
    func replyAssociated(relay: Endpoint) -> Bool {
        send([5, ReplyCode.succeeded.rawValue, 0] + SocksDatagram.address(relay))
    }

    private func selectMethod() throws(Failure) {
        let header = try read(2)
        guard header[0] == 5 else {
            throw .malformed("version \(header[0]) in the greeting, expected 5")
        }
        guard header[1] > 0 else {
            send([5, 0xff])
            throw .malformed("a greeting that offers no method")
        }
        let methods = try read(Int(header[1]))
        let wanted: UInt8 = credentials == nil ? 0 : 2
        guard methods.contains(wanted) else {
            send([5, 0xff])
            throw .noAcceptableMethod
        }
        send([5, wanted])
    }

    private func authenticate() throws(Failure) {
        let version = try read(1)[0]
        guard version == 1 else {
            send([1, 1])
            throw .malformed("username/password version \(version), expected 1")
        }
        let user = try read(Int(try read(1)[0]))
        let password = try read(Int(try read(1)[0]))
        guard let credentials, credentials.accepts(user: user, password: password) else {
            send([1, 1])
            throw .authenticationFailed
        }
        send([1, 0])
    }

    private func readRequest() throws(Failure) -> Request {
        let header = try read(4)
        guard header[0] == 5, header[2] == 0 else {
            reply(.generalFailure)
            throw .malformed("request version \(header[0]) or reserved byte \(header[2])")
        }
        let host: WireHost
        switch header[3] {
        case 1: host = .ipv4(try read(4))
        case 4: host = .ipv6(try read(16))
        case 3:
            let name = try read(Int(try read(1)[0]))
            guard let parsed = WireHost(String(decoding: name, as: UTF8.self)), WireHost.isValidName(name) else {
                _ = try? read(2)
                reply(.hostUnreachable)
                throw .badName
            }
            host = parsed
        default:
            reply(.addressTypeNotSupported)
            throw .unsupportedAddressType(header[3])
        }
        let portBytes = try read(2)
        switch header[1] {
        case 1: return .connect(Endpoint(host: host.text, port: UInt16(portBytes[0]) << 8 | UInt16(portBytes[1])))
        case 3: return .associate
        default:
            reply(.commandNotSupported)
            throw .unsupportedCommand(header[1])
        }
    }

    /// Reads exactly `count` bytes, never more: bytes the client sends after its request belong to the stream.
    private func read(_ count: Int) throws(Failure) -> [UInt8] {
        do {
            return try client.receive(exactly: count, before: deadline)
        } catch {
            switch error {
            case .closed(let filled): throw .malformed("the client closed after \(filled) of \(count) bytes")
            case .timedOut: throw .timedOut(seconds: timeout)
            case .failed(let error): throw .malformed("\(error)")
            }
        }
    }

    @discardableResult
    private func send(_ bytes: [UInt8]) -> Bool {
        (try? client.sendAll(bytes)) != nil
    }
}
