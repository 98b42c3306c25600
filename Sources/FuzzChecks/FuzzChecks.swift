import Crypto
import Glibc
import Mux

/// The properties the fuzzers check, one function per parser that reads untrusted bytes. Each must return
/// normally for every input; a trap or a failed `precondition` here is a bug the fuzzer found. The same functions
/// replay the committed corpus in `swift test` (Tests/MuxTests/FuzzRegressionTests.swift), so every crash that is
/// added to `Fuzz/Corpus/<target>/` stays a regression test.
public enum FuzzChecks {
    /// The targets, by the name of their corpus folder.
    public static let targets: [String: @Sendable ([UInt8]) -> Void] = [
        "frame-codec": frameCodec, "frame-decoder": frameDecoder, "handshake": handshake, "endpoint": endpoint,
        "socks": socks, "forward": forward, "proxy-header": proxyHeader, "tls-client-hello": tlsClientHello,
        "tls-server-answer": tlsServerAnswer, "tls-records": tlsRecords, "handshake-clock": handshakeClock,
        "stream-machine": streamMachine, "socks-datagram": socksDatagram,
    ]

    /// A frame plaintext from the peer: decoding either throws or gives a frame that encodes back to the input.
    public static func frameCodec(_ input: [UInt8]) {
        guard let frame = try? input.withUnsafeBytes({ try FrameCodec.decode($0) }) else { return }
        var encoded = [UInt8](repeating: 0, count: FrameCodec.encodedSize(of: frame))
        encoded.withUnsafeMutableBytes { FrameCodec.encode(frame, into: $0.baseAddress!) }
        precondition(encoded == input || isNormalised(frame, input, encoded), "decode/encode round trip differs")
    }

    /// Unknown RESET, FLOW_CLOSE and GOAWAY reasons and LISTEN_RESULT and RESUMED results are read as a known one, so their
    /// re-encoding differs from the input in that one byte only; PADDING keeps only its length, so its payload
    /// re-encodes as zeros.
    private static func isNormalised(_ frame: Frame, _ input: [UInt8], _ encoded: [UInt8]) -> Bool {
        let normalised: Range<Int>
        switch frame {
        case .reset, .flowClose, .goAway, .resumed: normalised = Frame.headerSize..<Frame.headerSize + 1
        case .listenResult: normalised = Frame.headerSize + 4..<Frame.headerSize + 5
        case .padding: normalised = Frame.headerSize..<input.count
        default: return false
        }
        guard input.count == encoded.count else { return false }
        return input.indices.allSatisfy { normalised.contains($0) || input[$0] == encoded[$0] }
    }

    /// A sealed byte stream, cut into chunks: bodies chosen by the input are sealed with the peer's key (so the
    /// decoder gets past authentication), then delivered in input-chosen chunk sizes; the decoder must yield
    /// exactly what `FrameCodec.decode` yields for each body, or throw where it throws.
    public static func frameDecoder(_ input: [UInt8]) {
        var reader = InputReader(input)
        var sealer = pair.sealer
        var decoder = FrameDecoder(opener: pair.opener)
        var stream: [UInt8] = []
        var expected: [Result<Frame, FrameError>] = []
        while let length = reader.next(UInt16.self) {
            let body = reader.take(Int(length) % (Limits.maxFrameBody + 64))
            var sealed = [UInt8](repeating: 0, count: body.count + SealedFrame.overhead)
            body.withUnsafeBytes { raw in
                sealed.withUnsafeMutableBytes { _ = try? sealer.seal(raw, into: $0.baseAddress!) }
            }
            stream += sealed
            expected.append(
                body.count > Limits.maxFrameBody
                    ? .failure(.tooLong(length: body.count, limit: Limits.maxFrameBody))
                    : body.count < Frame.headerSize
                        ? .failure(.tooShort(length: body.count)) : decode(body))
        }
        var decoded: [Result<Frame, FrameError>] = []
        var offset = 0
        // Byte by byte, around a typical segment, and in large reads.
        let chunk = [1, 7, 64, 1500, 16384, 65536][Int(input.first ?? 0) % 6]
        feeding: while offset < stream.count {
            let end = min(stream.count, offset + chunk)
            decoder.receive(Array(stream[offset..<end]))
            offset = end
            while true {
                do {
                    guard let frame = try decoder.nextFrame() else { break }
                    decoded.append(.success(frame))
                } catch {
                    decoded.append(.failure(error))
                    break feeding  // the link would end here
                }
            }
        }
        precondition(decoded.count <= expected.count, "decoder produced more frames than were sealed")
        for (got, wanted) in zip(decoded, expected) { precondition(got == wanted, "decoder disagrees with codec") }
    }

    private static func decode(_ body: [UInt8]) -> Result<Frame, FrameError> {
        body.withUnsafeBytes { raw in Result { () throws(FrameError) in try FrameCodec.decode(raw) } }
    }

    /// A client hello and a server hello from a stranger: neither may verify, and neither may trap.
    public static func handshake(_ input: [UInt8]) {
        let verified = try? ServerHandshake.verify(input, keys: [key], nowMillis: 1_800_000_000_000)
        precondition(verified == nil, "a hello not made with the key verified")
        // Only out of memory stops a client hello from being made.
        guard let client = try? ClientHandshake(key: key, nowMillis: 1_800_000_000_000) else { return }
        precondition((try? client.receive(serverHello: input)) == nil, "a server hello not made with the key verified")
    }

    /// A HOST:PORT argument: parsing either throws or gives an endpoint that prints and parses back to itself.
    public static func endpoint(_ input: [UInt8]) {
        let text = String(decoding: input, as: UTF8.self)
        guard let endpoint = try? Endpoint(parsing: text) else { return }
        precondition((try? Endpoint(parsing: endpoint.description)) == endpoint, "endpoint does not round-trip")
    }

    /// What a SOCKS client sends, then end of stream: the handshake returns a target or throws, and never
    /// traps or waits for more. The first byte chooses whether a login is required.
    public static func socks(_ input: [UInt8]) {
        var ends: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0 else { return }
        let (client, server) = (Socket(fd: ends[0]), Socket(fd: ends[1]))
        defer {
            client.close()
            server.close()
        }
        // Far below the socket buffer, so that writing it all never blocks.
        guard (try? client.sendAll(Array(input.prefix(32 * 1024)))) != nil else { return }
        client.shutdown(.write)
        let credentials = input.first.map { $0 & 1 == 1 } == true ? SocksCredentials(passwords: ["u": "p"]) : nil
        _ = try? SocksServer(client: server, credentials: credentials, timeout: 1).negotiate()
    }

    /// A datagram from a SOCKS5 client of a UDP association: its header is refused or names a target whose reply
    /// header, written the server's way, reads back as the same target with the data at the same place.
    public static func socksDatagram(_ input: [UInt8]) {
        guard let (target, offset) = input.withUnsafeBytes({ try? SocksDatagram.parse($0) }) else { return }
        precondition(offset <= input.count, "data offset \(offset) past the datagram's \(input.count) bytes")
        let reply = SocksDatagram.header(from: target)
        guard let (again, end) = reply.withUnsafeBytes({ try? SocksDatagram.parse($0) }) else {
            preconditionFailure("the reply header for \(target) does not parse")
        }
        precondition(again == target && end == reply.count, "\(target) read back as \(again) ending at \(end)")
    }

    /// What a trusted balancer sends before a hello, in input-chosen pieces: the reader asks for no byte past
    /// the header, buffers no more than its bound, and a header it accepts says the same once re-encoded.
    public static func proxyHeader(_ input: [UInt8]) {
        var reader = ProxyHeaderReader()
        var rest = input[...]
        while !rest.isEmpty {
            let size = max(1, min(Int(rest.first!) % 40, reader.missing, rest.count))
            let piece = rest.prefix(size)
            rest = rest.dropFirst(size)
            switch reader.append(piece) {
            case .incomplete:
                precondition(reader.missing > 0 && reader.missing <= 16 + 512, "missing \(reader.missing)")
            case .rejected: return
            case .complete(let origin):
                guard let origin else { return }
                var encoded = ProxyHeader.encode(origin, version: .v2)[...]
                var again = ProxyHeaderReader()
                var progress = ProxyHeaderReader.Progress.incomplete
                while progress == .incomplete, !encoded.isEmpty {
                    let piece = encoded.prefix(again.missing)
                    encoded = encoded.dropFirst(piece.count)
                    progress = again.append(piece)
                }
                precondition(progress == .complete(origin) && encoded.isEmpty, "re-encoded header reads differently")
                return
            }
        }
    }

    /// A `-L`, `-D` or `-R` argument, or an `--allow` / `--allow-listen` rule: parsing throws or succeeds, and
    /// every target a forward accepts fits in an OPEN frame that the peer decodes.
    public static func forward(_ input: [UInt8]) {
        let text = String(decoding: input, as: UTF8.self)
        _ = try? AllowRule(parsing: text)
        _ = try? ListenRule(parsing: text)
        _ = try? Forward.socks(parsing: text)
        if case .local(_, let target)? = try? Forward.local(parsing: text) {
            roundTrip(.open(1, window: 1, target: .endpoint(target), origin: nil))
        }
        if case .localUDP(_, let target)? = try? Forward.local(parsing: text) {
            roundTrip(.flowOpen(1, target: .endpoint(target), origin: nil))
        }
        switch try? Forward.reverse(parsing: text) {
        case .reverse(let listen, let target)?:
            roundTrip(.listen(forward: 1, kind: .tcp, address: listen))
            roundTrip(.open(1, window: 1, target: .endpoint(target), origin: nil))
        case .reverseUDP(let listen, let target)?:
            roundTrip(.listen(forward: 1, kind: .udp, address: listen))
            roundTrip(.flowOpen(1, target: .endpoint(target), origin: nil))
        default: break
        }
    }

    private static func roundTrip(_ frame: Frame) {
        var encoded = [UInt8](repeating: 0, count: FrameCodec.encodedSize(of: frame))
        encoded.withUnsafeMutableBytes { FrameCodec.encode(frame, into: $0.baseAddress!) }
        precondition((try? encoded.withUnsafeBytes { try FrameCodec.decode($0) }) != nil, "peer cannot decode \(frame)")
    }

    /// A fixed key (the fuzzers need no secrecy, only determinism), and a sealer with the opener for it, made
    /// once; each input starts from copies of them, so from nonce 0.
    private static let fixture: (key: PreSharedKey, sealer: FrameSealer, opener: FrameOpener) = {
        do {
            return try makeFixture()
        } catch {
            // Every input here is our own constant or our own handshake; only a broken libsodium ends up here.
            preconditionFailure("fuzz fixture: \(error)")
        }
    }()

    static var key: PreSharedKey { fixture.key }
    private static var pair: (sealer: FrameSealer, opener: FrameOpener) { (fixture.sealer, fixture.opener) }

    private static func makeFixture() throws -> (key: PreSharedKey, sealer: FrameSealer, opener: FrameOpener) {
        let key = try PreSharedKey(base64: "dGNwdHVubmVsIGZ1enogdGFyZ2V0cyBmaXhlZCBrZXk=", source: "fuzz key")
        let client = try ClientHandshake(key: key, nowMillis: 1_800_000_000_000)
        let (reply, serverKeys) = try ServerHandshake.verify(client.hello, keys: [key], nowMillis: 1_800_000_000_000)
            .respond()
        let clientKeys = try client.receive(serverHello: reply)
        return (key, clientKeys.clientSide().sealer, serverKeys.serverSide().opener)
    }
}

/// Reads integers and slices off the front of a fuzz input.
private struct InputReader {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func next<T: FixedWidthInteger>(_ type: T.Type) -> T? {
        guard position + MemoryLayout<T>.size <= bytes.count else { return nil }
        defer { position += MemoryLayout<T>.size }
        return bytes[position..<position + MemoryLayout<T>.size].reduce(0) { $0 << 8 | T($1) }
    }

    mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, position + count)
        defer { position = end }
        return Array(bytes[position..<end])
    }
}
