import Crypto
import Glibc
import Mux

/// The TLS transport's parsers of untrusted bytes: a ClientHello from anyone, a cover's (or anyone's) answer, and
/// the records around a link.
extension FuzzChecks {
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
        for expectingPeerFinished in [false, true] {
            let records = TLSInboundRecords(expectingPeerFinished: expectingPeerFinished)
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
                    let before = recordPayloads(input[..<offset], expectingPeerFinished: expectingPeerFinished)
                    precondition(before.isValid && delivered == before.payloads, "strip delivered other bytes")
                    precondition(
                        !recordPayloads(input[..<end], expectingPeerFinished: expectingPeerFinished).isValid,
                        "strip threw early")
                    break feeding
                }
                offset = end
            }
            guard offset == input.count else { continue }
            let expected = recordPayloads(input[...], expectingPeerFinished: expectingPeerFinished)
            precondition(expected.isValid, "strip accepted a record TLS 1.3 would not send")
            precondition(delivered == expected.payloads, "strip delivered other bytes")
        }
    }

    /// The reference for `tlsRecords`, written from RFC 8446 §5.1 and §D.4 and docs/PROTOCOL.md §3.2.4 alone:
    /// records of 5-byte headers (type, version, 16-bit length); when `expectingPeerFinished`, at most one
    /// ChangeCipherSpec record (type 20, version 0x0303, the one byte 1) before the first application-data record,
    /// dropped, and the first application-data record dropped too; application-data records (type 23, version
    /// 0x0303, 1 to 2^14 + 256 bytes) delivered; anything else invalid. A cut-off record delivers what arrived of
    /// it (and a cut-off ChangeCipherSpec nothing).
    private static func recordPayloads(_ stream: ArraySlice<UInt8>, expectingPeerFinished: Bool)
        -> (payloads: [UInt8], isValid: Bool)
    {
        let bytes = Array(stream)
        var payloads: [UInt8] = []
        var toSkip = expectingPeerFinished ? 1 : 0
        var changeCipherSpecs = expectingPeerFinished ? 1 : 0
        var offset = 0
        while bytes.count - offset >= 5 {
            let (type, version) = (bytes[offset], Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]))
            let length = Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
            let payload = bytes[offset + 5..<min(bytes.count, offset + 5 + length)]
            if type == 20 && version == 0x0303 && length == 1 && changeCipherSpecs > 0 {
                changeCipherSpecs -= 1
                if payload.first.map({ $0 != 1 }) ?? false { return (payloads, false) }
            } else if type == 23 && version == 0x0303 && (1...16_384 + 256).contains(length) {
                changeCipherSpecs = 0
                if toSkip > 0 { toSkip -= 1 } else { payloads += payload }
            } else {
                return (payloads, false)
            }
            offset += 5 + length
        }
        return (payloads, true)
    }
}
