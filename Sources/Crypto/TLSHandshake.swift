import CSodium

/// The TLS transport's handshake (docs/PROTOCOL.md §3.2): the native handshake's keys and guarantees, carried in
/// the fields a TLS 1.3 hello fills with random bytes. Bytes in, bytes out: the caller builds and parses the TLS
/// messages and hands over the fields and transcripts named here.
public enum TLSHelloAuthentication {
    /// The legacy_session_id the client's authentication fills: T ‖ 8 zero bytes, sealed (16 + 16 bytes).
    public static let sessionIDSize = 32
    /// The bytes of a TLS random used as the XChaCha20 nonce (its first 24 of 32).
    static let nonceSize = HandshakeMessage.nonceSize
    /// The header the server seals first in its encrypted flight: u32 length of the rest of the flight, sealed.
    public static let flightHeaderSize = 4 + HandshakeMessage.tagSize
    /// The most flight bytes a header may announce after its own record: far more than any certificate chain.
    public static let maximumFlightRemainder = 64 * 1024

    /// The public key of a fresh X25519 pair whose secret is dropped at once: for the keys a browser's hello
    /// carries that no one uses (its GREASE ECH key, a cover probe's shares), which must still be real keys.
    /// Throws `.outOfGuardedMemory` when there is no memory for the pair.
    public static func unusedX25519PublicKey() throws(CryptoError) -> [UInt8] {
        try EphemeralKeyPair().publicKey
    }

    static let clientHelloLabel = Array("tcptunnel/8 tls hello".utf8)
    static let flightLabel = Array("tcptunnel/8 tls flight".utf8)
}

/// The local agent's side: makes the two X25519 shares its ClientHello carries, authenticates the hello, and
/// checks the server's flight. Both shares are real key pairs, since a browser sends two distinct ones; the
/// server picks one by the group it answers with.
public struct TLSClientHandshake {
    private let key: PreSharedKey
    private let standalone: EphemeralKeyPair
    private let hybrid: EphemeralKeyPair

    /// The public key of the `x25519` key share.
    public var x25519Share: [UInt8] { standalone.publicKey }
    /// The public key in the X25519 half of the `X25519MLKEM768` key share.
    public var hybridX25519Share: [UInt8] { hybrid.publicKey }

    /// Two fresh ephemeral key pairs. Throws `.outOfGuardedMemory` when there is no memory for them.
    public init(key: PreSharedKey) throws(CryptoError) {
        self.key = key
        standalone = try EphemeralKeyPair()
        hybrid = try EphemeralKeyPair()
    }

    /// The legacy_session_id that authenticates `hello` — the whole ClientHello record with its session id
    /// zeroed, key shares included — stamped `nowMillis` (Unix milliseconds), with `random`'s first 24 bytes as
    /// the nonce. Only a holder of the key can make it, and any change to the hello breaks it.
    public func sessionID(authenticating hello: [UInt8], random: ArraySlice<UInt8>, nowMillis: UInt64) -> [UInt8] {
        let plaintext = withUnsafeBytes(of: nowMillis.bigEndian) { Array($0) } + [UInt8](repeating: 0, count: 8)
        return HandshakeMessage.seal(
            plaintext, key: key.clientHelloKey, nonce: random.prefix(TLSHelloAuthentication.nonceSize),
            associatedData: TLSHelloAuthentication.clientHelloLabel + hello)
    }

    /// Opens the header the server sealed first in its encrypted flight, bound to `transcript` (our ClientHello
    /// and its ServerHello records) with `serverRandom`'s first 24 bytes as the nonce; returns how many bytes of
    /// flight follow the record that holds it. Throws `.handshakeNotAuthentic` when the answer is not from a
    /// holder of the key answering this hello (a cover site's real flight, say), `.handshakeMalformed` when it
    /// announces more than `TLSHelloAuthentication.maximumFlightRemainder`.
    public func flightRemainder(header: ArraySlice<UInt8>, serverRandom: ArraySlice<UInt8>, transcript: [UInt8])
        throws(CryptoError) -> Int
    {
        guard header.count == TLSHelloAuthentication.flightHeaderSize,
            let plaintext = HandshakeMessage.open(
                header, key: key.serverHelloKey, nonce: serverRandom.prefix(TLSHelloAuthentication.nonceSize),
                associatedData: TLSHelloAuthentication.flightLabel + transcript)
        else { throw .handshakeNotAuthentic }
        let remainder = Int(plaintext.bigEndianInteger(0..<4))
        guard remainder <= TLSHelloAuthentication.maximumFlightRemainder else { throw .handshakeMalformed }
        return remainder
    }

    /// The session keys, from the server's X25519 `serverShare` with our share of the group it chose (the
    /// hybrid one's X25519 half when `usingHybridShare`), over `transcript`: everything we sent and received
    /// up to the end of the server's flight. Throws `.weakPeerKey` for a low-order share.
    public func sessionKeys(serverShare: ArraySlice<UInt8>, usingHybridShare: Bool, transcript: [UInt8])
        throws(CryptoError) -> SessionKeys
    {
        var shared = try (usingHybridShare ? hybrid : standalone).sharedSecret(with: serverShare)
        defer { wipe(&shared) }
        return try SessionKeys(presharedKey: key, sharedSecret: shared, transcript: transcript)
    }
}

/// The remote agent's side: checks a ClientHello's authentication before anything else is done for it.
public enum TLSServerHandshake {
    /// Opens `sessionID` under each of `keys` (two during a rotation), with `random`'s first 24 bytes as the
    /// nonce and `hello` (the ClientHello record with its session id zeroed) bound in, and checks its stamp
    /// against the clock `nowMillis` and the agent's start `notBefore` (Unix milliseconds). Costs one AEAD open
    /// per key and no public-key operation. Throws `.handshakeNotAuthentic`, `.clockSkew` or `.sentBeforeStart`.
    public static func open(
        sessionID: ArraySlice<UInt8>, random: ArraySlice<UInt8>, hello: [UInt8], keys: [PreSharedKey],
        nowMillis: UInt64, notBefore: UInt64
    ) throws(CryptoError) -> TLSVerifiedHello {
        guard sessionID.count == TLSHelloAuthentication.sessionIDSize,
            random.count >= TLSHelloAuthentication.nonceSize
        else { throw .handshakeNotAuthentic }
        let nonce = random.prefix(TLSHelloAuthentication.nonceSize)
        let associatedData = TLSHelloAuthentication.clientHelloLabel + hello
        for key in keys {
            guard
                let plaintext = HandshakeMessage.open(
                    sessionID, key: key.clientHelloKey, nonce: nonce, associatedData: associatedData)
            else { continue }
            let sentAt = plaintext.bigEndianInteger(0..<8)
            try ServerHandshake.checkStamp(sentAt, nowMillis: nowMillis, notBefore: notBefore)
            let tag = Array(sessionID.suffix(HandshakeMessage.tagSize))
            return TLSVerifiedHello(key: key, identity: HelloIdentity(tag: tag, sentAt: sentAt))
        }
        throw .handshakeNotAuthentic
    }
}

/// A ClientHello that is authentic and recent, ready to be answered once.
public struct TLSVerifiedHello {
    let key: PreSharedKey
    /// For the caller's replay cache.
    public let identity: HelloIdentity

    /// The fingerprint of the key the hello was made with.
    public var keyFingerprint: String { key.fingerprint }

    /// A fresh ephemeral key pair and its X25519 with `clientShare`, the client's share of the group the answer
    /// will name. Throws `.weakPeerKey` for a low-order share, `.outOfGuardedMemory` without memory for keys.
    public func respond(to clientShare: ArraySlice<UInt8>) throws(CryptoError) -> TLSServerResponse {
        let ephemeral = try EphemeralKeyPair()
        var shared = try ephemeral.sharedSecret(with: clientShare)
        defer { wipe(&shared) }
        let secret = try SecretBytes(count: shared.count) { out in
            shared.withUnsafeBytes { out.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: $0.count) }
        }
        return TLSServerResponse(key: key, serverShare: ephemeral.publicKey, shared: secret)
    }
}

/// The remote agent's answer in the making: its share for the ServerHello, then the flight header and the keys.
public struct TLSServerResponse {
    let key: PreSharedKey
    /// The public key for the ServerHello's key share (alone, or as the X25519 half of a hybrid share).
    public let serverShare: [UInt8]
    private let shared: SecretBytes

    init(key: PreSharedKey, serverShare: [UInt8], shared: SecretBytes) {
        self.key = key
        self.serverShare = serverShare
        self.shared = shared
    }

    /// The header to put first in the encrypted flight: `remainder` (the flight bytes after its record) sealed
    /// under the server hello key, bound to `transcript` (the ClientHello and ServerHello records), with
    /// `serverRandom`'s first 24 bytes as the nonce.
    public func flightHeader(serverRandom: ArraySlice<UInt8>, transcript: [UInt8], remainder: Int) -> [UInt8] {
        precondition(remainder <= TLSHelloAuthentication.maximumFlightRemainder, "a flight beyond the bound")
        return HandshakeMessage.seal(
            withUnsafeBytes(of: UInt32(remainder).bigEndian) { Array($0) }, key: key.serverHelloKey,
            nonce: serverRandom.prefix(TLSHelloAuthentication.nonceSize),
            associatedData: TLSHelloAuthentication.flightLabel + transcript)
    }

    /// The session keys over `transcript`: everything the client sent and the server answered up to the end of
    /// its flight.
    public func sessionKeys(transcript: [UInt8]) throws(CryptoError) -> SessionKeys {
        var secret = shared.withBytes { Array(UnsafeBufferPointer(start: $0, count: shared.count)) }
        defer { wipe(&secret) }
        return try SessionKeys(presharedKey: key, sharedSecret: secret, transcript: transcript)
    }
}
