import Crypto

/// A TLS ClientHello arriving in pieces at a remote agent of the TLS transport: its record header first, which
/// must announce a handshake record no longer than a local agent's hello, then the record, then its
/// authentication (one AEAD open per key). Pure: the caller reads the socket, keeps the replay cache, and relays
/// to the cover whatever is not a local agent's hello, with every byte received so far.
package struct PendingTLSHello {
    /// What the bytes so far amount to.
    package enum Progress {
        /// More bytes are needed.
        case incomplete
        /// Not a local agent's hello: it goes to the cover, with `received`.
        case notOurs(HandshakeRejection, detail: String)
        /// An authentic, recent hello; the caller checks it against its replay cache before answering.
        case complete(TLSVerifiedHello, ClientHelloFields)
    }

    /// The bytes so far: the hello, or what a stranger sent instead, passed on to the cover as they are.
    package private(set) var received: [UInt8] = []

    package init() {}

    /// Whether any byte has arrived.
    var hasStarted: Bool { !received.isEmpty }

    /// The bytes to read next: the rest of the record header, then the rest of the record. Never more, so
    /// that nothing a local agent sends after its hello is taken from the link.
    package var missing: Int {
        received.count < TLSRecord.headerSize
            ? TLSRecord.headerSize - received.count
            : TLSRecord.headerSize + TLSRecord.Header(received).length - received.count
    }

    /// Adds `bytes` (at most `missing` of them) and checks what is complete, against `keys`, the clock
    /// `nowMillis` and the agent's start `notBefore` (Unix milliseconds).
    package mutating func append(
        _ bytes: ArraySlice<UInt8>, keys: [PreSharedKey], nowMillis: UInt64, notBefore: UInt64
    ) -> Progress {
        precondition(bytes.count <= missing, "read past the hello")
        received += bytes
        if received.count == TLSRecord.headerSize {
            let header = TLSRecord.Header(received)
            guard header.type == TLSRecord.ContentType.handshake.rawValue, header.version >> 8 == 0x03,
                header.length > 0, TLSRecord.headerSize + header.length <= Limits.maxTLSClientHello
            else { return .notOurs(.notAuthentic, detail: "not a TLS record a local agent's hello fits in") }
        }
        guard missing == 0 else { return .incomplete }
        guard let fields = ClientHelloFields(record: received) else {
            return .notOurs(.notAuthentic, detail: "not a ClientHello of a local agent's shape")
        }
        do {
            let verified = try TLSServerHandshake.open(
                sessionID: received[fields.sessionIDRange], random: received[fields.randomRange],
                hello: fields.recordWithoutSessionID, keys: keys, nowMillis: nowMillis, notBefore: notBefore)
            return .complete(verified, fields)
        } catch {
            return .notOurs(HandshakeRejection(error), detail: "\(error)")
        }
    }
}
