import Crypto

/// A client hello arriving in pieces, checked as soon as each part is in: its fixed header first (one AEAD open
/// per key, before a byte of padding is buffered), then the whole hello. Pure: the caller reads the socket and
/// keeps the replay cache.
struct PendingHello {
    /// What the bytes so far amount to.
    enum Progress {
        /// More bytes are needed: `missing` of them.
        case incomplete
        /// The hello can never verify.
        case rejected(HandshakeRejection, detail: String)
        /// The whole hello verified; the caller checks it against its replay cache before answering.
        case complete(VerifiedHello)
    }

    /// The hello so far; empty (no buffer) until the first byte arrives.
    private var received: [UInt8] = []
    private var header: ClientHelloHeader?

    /// Whether any byte has arrived.
    var hasStarted: Bool { !received.isEmpty }

    /// The bytes to read next: the rest of the header until it has verified, then the rest of the hello. Never
    /// more, so that nothing the peer sends after its hello is taken from the link.
    var missing: Int { (header?.helloSize ?? HandshakeMessage.clientHeaderSize) - received.count }

    /// Adds `bytes` (at most `missing` of them) and checks what is complete, against `keys`, the clock
    /// `nowMillis` and the agent's start `notBefore` (Unix milliseconds).
    mutating func append(
        _ bytes: ArraySlice<UInt8>, keys: [PreSharedKey], nowMillis: UInt64, notBefore: UInt64
    ) -> Progress {
        precondition(bytes.count <= missing, "read past the hello")
        if received.isEmpty { received.reserveCapacity(HandshakeMessage.clientHeaderSize) }
        received += bytes
        guard missing == 0 else { return .incomplete }
        guard let header else {
            do {
                let opened = try ServerHandshake.openHeader(
                    received[...], keys: keys, nowMillis: nowMillis, notBefore: notBefore)
                header = opened
                received.reserveCapacity(opened.helloSize)
            } catch {
                return .rejected(HandshakeRejection(error), detail: "\(error)")
            }
            return missing == 0 ? append([], keys: keys, nowMillis: nowMillis, notBefore: notBefore) : .incomplete
        }
        do {
            return .complete(try header.complete(received))
        } catch {
            return .rejected(.notAuthentic, detail: "\(error)")
        }
    }
}
