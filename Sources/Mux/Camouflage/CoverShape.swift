import Crypto

/// How the cover site answers a browser's ClientHello, learned by asking it (`CoverProbe`): its ServerHello
/// (cipher suite, key-share group, extensions and their order, as sent), whether a ChangeCipherSpec follows, and
/// the lengths of the encrypted records of its first flight. The remote agent answers its local agents' hellos
/// in this shape, with its own random, key share and flight contents (docs/PROTOCOL.md §3.2).
package struct CoverShape: Sendable, Equatable {
    /// The cover's ServerHello record, as it sent it.
    package let serverHello: [UInt8]
    package let fields: ServerHelloFields
    /// Whether a ChangeCipherSpec record came between the ServerHello and the encrypted flight.
    package let sendsChangeCipherSpec: Bool
    /// The payload lengths of the application-data records of its first flight, in order.
    package let flightRecordLengths: [Int]

    /// Why a cover's answer cannot be mimicked.
    package enum Refusal: Error, Equatable, CustomStringConvertible {
        case serverHello(ServerHelloFields.Refusal)
        /// Records that are not ServerHello, ChangeCipherSpec and application data, in that order.
        case unexpectedRecords
        /// No encrypted flight after the ServerHello (or one whose first record is shorter than a flight header,
        /// or longer in all than a flight header can announce).
        case noEncryptedFlight
        /// The ServerHello did not echo a session id of the browser's 32 bytes, as TLS 1.3 requires.
        case sessionIDNotEchoed

        package var description: String {
            switch self {
            case .serverHello(let refusal): "\(refusal)"
            case .unexpectedRecords: "its answer is not a TLS 1.3 server's first flight"
            case .noEncryptedFlight: "no encrypted flight followed its ServerHello"
            case .sessionIDNotEchoed: "its ServerHello did not echo the hello's session id"
            }
        }
    }

    /// Parses `answer`, everything the cover sent after a ClientHello until it waited for the client.
    package init(answer: [UInt8]) throws(Refusal) {
        var records: [(type: UInt8, range: Range<Int>)] = []
        var offset = 0
        while answer.count - offset >= TLSRecord.headerSize {
            let header = TLSRecord.Header(answer[offset...])
            let end = offset + TLSRecord.headerSize + header.length
            guard end <= answer.count else { break }  // a record cut off by the end of the probe is left out
            records.append((header.type, offset..<end))
            offset = end
        }
        guard let first = records.first else { throw .serverHello(.notServerHello) }
        let serverHello = Array(answer[first.range])
        do {
            fields = try ServerHelloFields(record: serverHello)
        } catch {
            throw .serverHello(error)
        }
        // Our answers put the client's 32-byte session id where the cover echoed the probe's.
        guard fields.sessionIDRange.count == TLSHelloAuthentication.sessionIDSize else { throw .sessionIDNotEchoed }
        self.serverHello = serverHello
        var rest = records.dropFirst()
        sendsChangeCipherSpec = rest.first?.type == TLSRecord.ContentType.changeCipherSpec.rawValue
        if sendsChangeCipherSpec { rest = rest.dropFirst() }
        guard rest.allSatisfy({ $0.type == TLSRecord.ContentType.applicationData.rawValue }) else {
            throw .unexpectedRecords
        }
        flightRecordLengths = rest.map { $0.range.count - TLSRecord.headerSize }
        guard let firstLength = flightRecordLengths.first, firstLength >= TLSHelloAuthentication.flightHeaderSize,
            flightRemainder <= TLSHelloAuthentication.maximumFlightRemainder
        else { throw .noEncryptedFlight }
    }

    /// What the shape is, for a log line: `TLS 1.3, TLS_AES_128_GCM_SHA256, x25519, 4 encrypted records (2,961 bytes)`.
    var summary: String {
        let suites: [UInt16: String] = [
            0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384", 0x1303: "TLS_CHACHA20_POLY1305_SHA256",
        ]
        let suite = suites[fields.cipherSuite] ?? "cipher suite \(fields.cipherSuite)"
        let group = fields.isHybrid ? "X25519MLKEM768" : "x25519"
        let bytes = flightRecordLengths.reduce(0) { $0 + TLSRecord.headerSize + $1 }
        return "TLS 1.3, \(suite), \(group), \(flightRecordLengths.count) encrypted records (\(bytes) bytes)"
    }

    /// The bytes of the flight's records after the first, headers included: what the flight header announces.
    var flightRemainder: Int {
        flightRecordLengths.dropFirst().reduce(0) { $0 + TLSRecord.headerSize + $1 }
    }

    /// A ServerHello of this shape: `random`, the client's `sessionID` echoed, and `serverShare` as the X25519
    /// key (after a random ML-KEM ciphertext when the cover chose the hybrid group).
    package func serverHello(
        random: [UInt8], sessionID: ArraySlice<UInt8>, serverShare: [UInt8],
        using generator: inout some RandomNumberGenerator
    ) -> [UInt8] {
        var record = serverHello
        record.replaceSubrange(fields.randomRange, with: random)
        let keyExchange =
            fields.isHybrid ? randomBytes(MLKEMCiphertext.size, using: &generator) + serverShare : serverShare
        record.replaceSubrange(fields.keyExchangeRange, with: keyExchange)
        // The session id last: the cover echoed the probe's, which has the length of every browser's (32 bytes).
        record.replaceSubrange(fields.sessionIDRange, with: sessionID)
        return record
    }

    /// The rest of the answer: the ChangeCipherSpec if the cover sends one, then records of the cover's flight
    /// lengths, the first starting with `header` (the sealed flight header) and the rest random, like ciphertext.
    package func flight(header: [UInt8], using generator: inout some RandomNumberGenerator) -> [UInt8] {
        var bytes = sendsChangeCipherSpec ? TLSRecord.changeCipherSpec : []
        for (index, length) in flightRecordLengths.enumerated() {
            let filler = randomBytes(length - (index == 0 ? header.count : 0), using: &generator)
            bytes += TLSRecord.header(.applicationData, length: length) + (index == 0 ? header : []) + filler
        }
        return bytes
    }
}
