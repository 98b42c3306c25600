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
        "tls-server-answer": tlsServerAnswer, "tls-records": tlsRecords,
    ]

    /// A frame plaintext from the peer: decoding either throws or gives a frame that encodes back to the input.
    public static func frameCodec(_ input: [UInt8]) {
        guard let frame = try? input.withUnsafeBytes({ try FrameCodec.decode($0) }) else { return }
        var encoded = [UInt8](repeating: 0, count: FrameCodec.encodedSize(of: frame))
        encoded.withUnsafeMutableBytes { FrameCodec.encode(frame, into: $0.baseAddress!) }
        precondition(encoded == input || isNormalised(frame, input, encoded), "decode/encode round trip differs")
    }

    /// Unknown RESET and GOAWAY reasons and LISTEN_RESULT results are read as a known one, so their re-encoding
    /// differs from the input in that one byte only; PADDING keeps only its length, so its payload re-encodes as
    /// zeros.
    private static func isNormalised(_ frame: Frame, _ input: [UInt8], _ encoded: [UInt8]) -> Bool {
        let normalised: Range<Int>
        switch frame {
        case .reset, .goAway: normalised = Frame.headerSize..<Frame.headerSize + 1
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
        if case .reverse(let listen, let target)? = try? Forward.reverse(parsing: text) {
            roundTrip(.listen(forward: 1, address: listen))
            roundTrip(.open(1, window: 1, target: .endpoint(target), origin: nil))
        }
    }

    private static func roundTrip(_ frame: Frame) {
        var encoded = [UInt8](repeating: 0, count: FrameCodec.encodedSize(of: frame))
        encoded.withUnsafeMutableBytes { FrameCodec.encode(frame, into: $0.baseAddress!) }
        precondition((try? encoded.withUnsafeBytes { try FrameCodec.decode($0) }) != nil, "peer cannot decode \(frame)")
    }

    /// What anyone sends a remote agent of the TLS transport, in input-chosen pieces (each piece's first byte
    /// chooses its size; 0 asks for all that is missing): the reader never asks for a byte past the record,
    /// keeps exactly the bytes given (they go to the cover as they are), and never authenticates them. The
    /// same bytes read as a whole ClientHello record parse to fields inside the record, or to nothing.
    public static func tlsClientHello(_ input: [UInt8]) {
        var pending = PendingTLSHello()
        var given: [UInt8] = []
        var rest = input[...]
        reading: while !rest.isEmpty {
            let missing = pending.missing
            precondition(missing > 0, "reading on with nothing missing")
            let chosen = Int(rest.first!)
            let piece = rest.prefix(min(chosen == 0 ? missing : chosen, missing))
            rest = rest.dropFirst(piece.count)
            given += piece
            let progress = pending.append(
                piece, keys: [key], nowMillis: 1_800_000_000_000, notBefore: 1_799_000_000_000)
            precondition(pending.received == given, "the hello's bytes differ from those given")
            switch progress {
            case .incomplete: continue
            case .notOurs: break reading
            case .complete: preconditionFailure("a hello not made with the key authenticated")
            }
        }
        guard let fields = ClientHelloFields(record: input) else { return }
        precondition(fields.record == input, "the fields hold another record")
        let ranges = [fields.randomRange, fields.sessionIDRange, fields.x25519Share, fields.hybridX25519Share]
        for case let range? in ranges {
            precondition(range.lowerBound >= 0 && range.upperBound <= input.count, "\(range) outside the record")
            precondition(range.count == 32, "a random, session id or X25519 share of \(range.count) bytes")
        }
    }

    /// What a cover site answers (or, at a local agent, whatever answers its hello): reading a ServerHello or a
    /// shape never traps, and a shape that parses gives a ServerHello that a local agent reads back to the same
    /// cipher suite and group, with our random, session id and share, and a flight of the shape's records.
    public static func tlsServerAnswer(_ input: [UInt8]) {
        if let fields = try? ServerHelloFields(record: input) {
            for range in [fields.randomRange, fields.sessionIDRange, fields.keyExchangeRange] {
                precondition(range.lowerBound >= 0 && range.upperBound <= input.count, "\(range) outside the record")
            }
        }
        guard let shape = try? CoverShape(answer: input) else { return }
        var generator = SeededGenerator(seed: 1)
        // A client's session id is always 32 bytes: ClientHelloFields accepts no other.
        let (random, sessionID, share) = (bytes(0x52, 32), bytes(0x53, 32), bytes(0x4B, 32))
        let hello = shape.serverHello(random: random, sessionID: sessionID[...], serverShare: share, using: &generator)
        guard let fields = try? ServerHelloFields(record: hello) else {
            preconditionFailure("the ServerHello made in the cover's shape does not parse")
        }
        precondition(
            fields.cipherSuite == shape.fields.cipherSuite && fields.group == shape.fields.group,
            "the ServerHello made in the cover's shape reads as another suite or group")
        precondition(
            Array(hello[fields.randomRange]) == random && Array(hello[fields.sessionIDRange]) == sessionID
                && Array(hello[fields.keyExchangeRange.suffix(32)]) == share,
            "the ServerHello made in the cover's shape carries other bytes")
        let header = bytes(0x46, TLSHelloAuthentication.flightHeaderSize)
        let flight = shape.flight(header: header, using: &generator)
        let changeCipherSpec = shape.sendsChangeCipherSpec ? 6 : 0
        let records = shape.flightRecordLengths.reduce(0) { $0 + 5 + $1 }
        precondition(flight.count == changeCipherSpec + records, "a flight of \(flight.count) bytes")
        let first = changeCipherSpec + 5
        precondition(Array(flight[first..<first + header.count]) == header, "the flight header is not first")
    }

    private static func bytes(_ value: UInt8, _ count: Int) -> [UInt8] { [UInt8](repeating: value, count: count) }

    /// What the peer of a TLS link sends once the handshake is done, received in input-chosen pieces (each
    /// piece's first byte chooses its size), with and without the peer's Finished to drop: stripping the
    /// record headers in place delivers what `recordPayloads` reads, and throws exactly where it finds a
    /// record TLS 1.3 would not send (losing what the failing piece held before it: the link ends there).
    public static func tlsRecords(_ input: [UInt8]) {
        let sizes = [1, 2, 5, 6, 64, 1500, 65_536]
        for recordsToSkip in 0...1 {
            let records = TLSInboundRecords(recordsToSkip: recordsToSkip)
            var delivered: [UInt8] = []
            var offset = 0
            feeding: while offset < input.count {
                let end = min(input.count, offset + sizes[Int(input[offset]) % sizes.count])
                var piece = Array(input[offset..<end])
                let stripped = piece.withUnsafeMutableBytes { raw in
                    Result { () throws(SocketError) in try records.strip(raw.baseAddress!, count: raw.count) }
                }
                switch stripped {
                case .success(let count):
                    precondition(count <= piece.count, "strip delivered \(count) of \(piece.count) bytes")
                    delivered += piece[..<count]
                case .failure(let error):
                    precondition(error.code == EPROTO, "strip threw \(error)")
                    let before = recordPayloads(input[..<offset], skipping: recordsToSkip)
                    precondition(before.isValid && delivered == before.payloads, "strip delivered other bytes")
                    precondition(!recordPayloads(input[..<end], skipping: recordsToSkip).isValid, "strip threw early")
                    break feeding
                }
                offset = end
            }
            guard offset == input.count else { continue }
            let expected = recordPayloads(input[...], skipping: recordsToSkip)
            precondition(expected.isValid, "strip accepted a record TLS 1.3 would not send")
            precondition(delivered == expected.payloads, "strip delivered other bytes")
        }
    }

    /// The reference for `tlsRecords`, written from RFC 8446 §5.1 and §D.4 alone: records of 5-byte headers
    /// (type, version, 16-bit length); one-byte ChangeCipherSpec records (type 20, version 0x0303) dropped
    /// until the first application-data record; application-data records (type 23, version 0x0303, 1 to
    /// 2^14 + 256 bytes) delivered, but for the first `skipping`; anything else invalid. A cut-off record
    /// delivers what arrived of it.
    private static func recordPayloads(_ stream: ArraySlice<UInt8>, skipping: Int) -> (payloads: [UInt8], isValid: Bool)
    {
        let bytes = Array(stream)
        var payloads: [UInt8] = []
        var toSkip = skipping
        var hasSeenApplicationData = false
        var offset = 0
        while bytes.count - offset >= 5 {
            let (type, version) = (bytes[offset], Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]))
            let length = Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
            let payload = bytes[offset + 5..<min(bytes.count, offset + 5 + length)]
            if type == 20 && version == 0x0303 && length == 1 && !hasSeenApplicationData {
                // dropped
            } else if type == 23 && version == 0x0303 && (1...16_384 + 256).contains(length) {
                hasSeenApplicationData = true
                if toSkip > 0 { toSkip -= 1 } else { payloads += payload }
            } else {
                return (payloads, false)
            }
            offset += 5 + length
        }
        return (payloads, true)
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

    private static var key: PreSharedKey { fixture.key }
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
