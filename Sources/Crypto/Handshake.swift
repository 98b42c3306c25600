import CSodium

/// An X25519 key pair used for one handshake only, then dropped; that is what gives forward secrecy.
struct EphemeralKeyPair {
    let publicKey: [UInt8]
    let secretKey: SecretBytes

    init() throws(CryptoError) {
        Sodium.ensureReady()
        var publicKey = [UInt8](repeating: 0, count: HandshakeMessage.publicKeySize)
        secretKey = try SecretBytes(count: Int(crypto_scalarmult_SCALARBYTES)) { secret in
            randombytes_buf(secret, Int(crypto_scalarmult_SCALARBYTES))
            _ = crypto_scalarmult_base(&publicKey, secret)
        }
        self.publicKey = publicKey
    }

    /// X25519 with the peer's public key. Throws when the result is all zeros (a low-order peer key).
    func sharedSecret(with peerPublicKey: ArraySlice<UInt8>) throws(CryptoError) -> [UInt8] {
        var shared = [UInt8](repeating: 0, count: Int(crypto_scalarmult_BYTES))
        let peer = Array(peerPublicKey)
        let status = secretKey.withBytes { crypto_scalarmult(&shared, $0, peer) }
        guard status == 0 else { throw .weakPeerKey }
        return shared
    }
}

/// The initiating side (the local agent). Send `hello`, then pass the server's reply to `receive`.
public struct ClientHandshake {
    private let key: PreSharedKey
    private let ephemeral: EphemeralKeyPair
    /// The client hello to send: `HandshakeMessage.clientHeaderSize` characters plus 0 to
    /// `HandshakeMessage.maximumPadding` characters of random padding, all printable, none predictable.
    public let hello: [UInt8]

    /// Prepares a hello stamped with `nowMillis` (Unix time in milliseconds).
    /// Throws `.outOfGuardedMemory` when there is no memory for the ephemeral key.
    public init(key: PreSharedKey, nowMillis: UInt64) throws(CryptoError) {
        self.key = key
        ephemeral = try EphemeralKeyPair()
        let fields = ephemeral.publicKey + withUnsafeBytes(of: nowMillis.bigEndian) { Array($0) }
        hello = HandshakeMessage.sealHello(
            fields, key: key.clientHelloKey, associatedData: HandshakeMessage.clientHelloAssociatedData)
    }

    /// The size of the whole server hello, read from its first `HandshakeMessage.serverHeaderSize` bytes.
    /// Throws `.handshakeNotAuthentic` when they are not a reply to this hello from a holder of the same key.
    public func serverHelloSize(header: ArraySlice<UInt8>) throws(CryptoError) -> Int {
        HandshakeMessage.serverHeaderSize + (try openReplyHeader(header).paddingCount)
    }

    /// Verifies the whole server hello and derives the session keys.
    /// Throws `.handshakeMalformed` or `.handshakeNotAuthentic` when the reply is not from a holder of the same key.
    public func receive(serverHello reply: [UInt8]) throws(CryptoError) -> SessionKeys {
        guard reply.count >= HandshakeMessage.serverHeaderSize else { throw .handshakeMalformed }
        let header = try openReplyHeader(reply[..<HandshakeMessage.serverHeaderSize])
        guard reply.count == HandshakeMessage.serverHeaderSize + header.paddingCount else {
            throw .handshakeMalformed
        }
        var shared = try ephemeral.sharedSecret(with: header.serverPublic[...])
        defer { wipe(&shared) }
        return try SessionKeys(presharedKey: key, sharedSecret: shared, transcript: hello + reply)
    }

    /// The server's ephemeral key and padding length; the reply's MAC covers this whole hello.
    private func openReplyHeader(_ header: ArraySlice<UInt8>) throws(CryptoError)
        -> (serverPublic: [UInt8], paddingCount: Int)
    {
        guard header.count == HandshakeMessage.serverHeaderSize else { throw .handshakeMalformed }
        guard let opened = try HandshakeMessage.openHello(header, key: key.serverHelloKey, associatedData: hello)
        else { throw .handshakeNotAuthentic }
        return (opened.fields, opened.paddingCount)
    }
}

/// The answering side (the remote agent): verifies a client hello, then answers it.
public enum ServerHandshake {
    /// How far a client's clock may differ from ours, in seconds. Wide enough for an unsynchronised VPS,
    /// narrow enough that an old recorded hello is refused; within it, `HelloReplayCache` refuses repeats.
    public static let maximumClockSkew: Int64 = 120

    /// Opens the first `HandshakeMessage.clientHeaderSize` bytes of a client hello, under each of `keys` (more
    /// than one during a key rotation), and checks its timestamp against the clock `nowMillis` and against
    /// `notBefore` (both Unix milliseconds): a hello stamped before `notBefore`, the agent's own start, could
    /// have been recorded before it and so be missing from its replay cache. Costs one AEAD open per key and
    /// no public-key operation. Throws without producing any reply bytes: `.handshakeNotAuthentic` (or
    /// `.handshakeMalformed`), `.clockSkew`, or `.sentBeforeStart`.
    public static func openHeader(
        _ header: ArraySlice<UInt8>, keys: [PreSharedKey], nowMillis: UInt64, notBefore: UInt64
    ) throws(CryptoError) -> ClientHelloHeader {
        guard header.count == HandshakeMessage.clientHeaderSize else { throw .handshakeMalformed }
        var opened: (key: PreSharedKey, fields: [UInt8], paddingCount: Int, tag: [UInt8])?
        for key in keys {
            if let hello = try HandshakeMessage.openHello(
                header, key: key.clientHelloKey, associatedData: HandshakeMessage.clientHelloAssociatedData)
            {
                opened = (key, hello.fields, hello.paddingCount, hello.tag)
                break
            }
        }
        guard let (key, fields, paddingCount, tag) = opened else { throw .handshakeNotAuthentic }
        let keyEnd = HandshakeMessage.publicKeySize
        let sentAt = fields.bigEndianInteger(keyEnd..<keyEnd + 8)
        try checkStamp(sentAt, nowMillis: nowMillis, notBefore: notBefore)
        return ClientHelloHeader(
            key: key, clientPublic: Array(fields[..<keyEnd]),
            helloSize: HandshakeMessage.clientHeaderSize + paddingCount,
            identity: HelloIdentity(tag: tag, sentAt: sentAt))
    }

    /// Throws `.clockSkew` when `sentAt` is more than `maximumClockSkew` from `nowMillis` either way, and
    /// `.sentBeforeStart` when it is before `notBefore` (all Unix milliseconds). Any 64-bit stamp is a valid
    /// input: a key holder's hello stamped at 2^63 is refused, not a trap.
    static func checkStamp(_ sentAt: UInt64, nowMillis: UInt64, notBefore: UInt64) throws(CryptoError) {
        let distance = sentAt > nowMillis ? sentAt - nowMillis : nowMillis - sentAt
        guard distance <= UInt64(maximumClockSkew) * 1000 else {
            let seconds = Int64(clamping: distance / 1000)
            throw .clockSkew(seconds: sentAt > nowMillis ? -seconds : seconds)
        }
        guard sentAt >= notBefore else { throw .sentBeforeStart }
    }

    /// Checks a whole client hello at once: `openHeader`, then its size.
    public static func verify(
        _ clientHello: [UInt8], keys: [PreSharedKey], nowMillis: UInt64, notBefore: UInt64 = 0
    ) throws(CryptoError) -> VerifiedHello {
        guard clientHello.count >= HandshakeMessage.clientHeaderSize else { throw .handshakeMalformed }
        let header = try openHeader(
            clientHello[..<HandshakeMessage.clientHeaderSize], keys: keys, nowMillis: nowMillis, notBefore: notBefore)
        return try header.complete(clientHello)
    }
}

/// The authentic, recent fixed part of a client hello: it says how long the whole hello is.
public struct ClientHelloHeader {
    let key: PreSharedKey
    let clientPublic: [UInt8]
    /// The size of the whole hello, padding included.
    public let helloSize: Int
    /// For the caller's replay cache.
    public let identity: HelloIdentity

    /// The whole hello whose first bytes were this header, ready to be answered.
    /// Throws `.handshakeMalformed` when it is not `helloSize` bytes.
    public func complete(_ hello: [UInt8]) throws(CryptoError) -> VerifiedHello {
        guard hello.count == helloSize else { throw .handshakeMalformed }
        return VerifiedHello(hello: hello, key: key, clientPublic: clientPublic, identity: identity)
    }
}

/// What makes a client hello unique: its header's Poly1305 tag (which covers a fresh random nonce and a fresh
/// ephemeral key) and its timestamp.
public struct HelloIdentity: Hashable, Sendable {
    /// The header's tag.
    public let tag: [UInt8]
    /// The client's clock when it sent the hello, Unix milliseconds.
    public let sentAt: UInt64
}

/// A client hello that is authentic and recent, ready to be answered once.
public struct VerifiedHello {
    let hello: [UInt8]
    let key: PreSharedKey
    let clientPublic: [UInt8]
    /// For the caller's replay cache.
    public let identity: HelloIdentity

    /// The fingerprint of the key the hello was made with.
    public var keyFingerprint: String { key.fingerprint }

    /// Makes the server hello (random nonce, sealed header bound to the whole client hello, random padding)
    /// and the session keys.
    public func respond() throws(CryptoError) -> (reply: [UInt8], keys: SessionKeys) {
        let ephemeral = try EphemeralKeyPair()
        let reply = HandshakeMessage.sealHello(ephemeral.publicKey, key: key.serverHelloKey, associatedData: hello)
        var shared = try ephemeral.sharedSecret(with: clientPublic[...])
        defer { wipe(&shared) }
        return (reply, try SessionKeys(presharedKey: key, sharedSecret: shared, transcript: hello + reply))
    }
}
