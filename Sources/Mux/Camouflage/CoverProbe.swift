import Crypto

/// Asks the cover site how it answers a browser: connects, sends a browser's ClientHello, reads what the cover
/// sends until it waits for the browser's next flight, and closes. One blocking exchange on the calling thread.
enum CoverProbe {
    /// Why the cover's answer could not be learned.
    enum Failure: Error, Equatable, CustomStringConvertible {
        case unresolvable(EndpointError)
        case connect(SocketError)
        /// It sent nothing within the time allowed.
        case silent
        /// It closed, or reset, without a ServerHello.
        case closed
        case unusable(CoverShape.Refusal)
        case resources(CryptoError)

        var description: String {
            switch self {
            case .unresolvable(let error): "\(error)"
            case .connect(let error): "\(error)"
            case .silent: "it sent nothing back"
            case .closed: "it closed the connection without answering"
            case .unusable(let refusal): "\(refusal)"
            case .resources(let error): "\(error)"
            }
        }
    }

    /// How long the cover may pause within its first flight: it sends the whole flight at once and then waits
    /// for the client, so a quarter second of silence after its first bytes ends the flight.
    static let quietPeriod = 0.25
    /// The most a first flight may be: a ServerHello and a long certificate chain are far less.
    static let maximumAnswer = 80 * 1024

    /// The cover's shape for a hello naming `serverName` (none for a cover given by address), asked at
    /// `addresses` within `timeout` seconds for the connect and as much again for the answer.
    static func learn(from addresses: [ResolvedAddress], serverName: String?, timeout: Double) throws(Failure)
        -> CoverShape
    {
        var hello: BrowserClientHello
        do {
            var generator = SystemRandomNumberGenerator()
            hello = BrowserClientHello(
                serverName: serverName, x25519Share: try TLSHelloAuthentication.unusedX25519PublicKey(),
                hybridX25519Share: try TLSHelloAuthentication.unusedX25519PublicKey(),
                echKey: try TLSHelloAuthentication.unusedX25519PublicKey(), using: &generator)
            hello.fill(random: randomBytes(32, using: &generator), sessionID: randomBytes(32, using: &generator))
        } catch {
            throw .resources(error)
        }
        let socket: Socket
        do {
            socket = try Socket.connect(to: addresses, timeout: timeout)
        } catch {
            throw .connect(error)
        }
        defer { socket.close() }
        do {
            try socket.sendAll(hello.bytes)
        } catch {
            throw .connect(error)
        }
        let answer = receiveFlight(socket, deadline: .now + .seconds(timeout))
        guard !answer.bytes.isEmpty else { throw answer.wasClosed ? .closed : .silent }
        do {
            return try CoverShape(answer: answer.bytes)
        } catch {
            throw .unusable(error)
        }
    }

    /// What arrives before `deadline`, ended early by `quietPeriod` of silence after the first bytes, by the
    /// cover closing, or by `maximumAnswer` bytes.
    private static func receiveFlight(_ socket: Socket, deadline: ContinuousClock.Instant)
        -> (bytes: [UInt8], wasClosed: Bool)
    {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while bytes.count < maximumAnswer {
            let remaining = (deadline - .now).inSeconds
            guard remaining > 0 else { break }
            socket.setReceiveTimeout(seconds: bytes.isEmpty ? remaining : min(remaining, quietPeriod))
            let received = buffer.withUnsafeMutableBytes { raw in
                Result { () throws(SocketError) in try socket.receive(into: raw) }
            }
            switch received {
            case .success(0): return (bytes, true)
            case .success(let count): bytes += buffer[..<count]
            case .failure(let error): return (bytes, !error.isTimeout)
            }
        }
        return (bytes, false)
    }
}
