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
    /// The client hello to send, `HandshakeMessage.clientHelloSize` bytes.
    public let hello: [UInt8]

    /// Prepares a hello stamped with `now` (Unix seconds).
    /// Throws `.outOfGuardedMemory` when there is no memory for the ephemeral key.
    public init(key: PreSharedKey, now: UInt64) throws(CryptoError) {
        self.key = key
        ephemeral = try EphemeralKeyPair()
        let time = withUnsafeBytes(of: now.bigEndian) { Array($0) }
        let tag = HandshakeMessage.mac(
            key: key.helloKey, label: HandshakeMessage.clientLabel, ephemeral.publicKey, time)
        hello = ephemeral.publicKey + time + tag
    }

    /// Verifies the server hello and derives the session keys.
    /// Throws `.handshakeMalformed` or `.handshakeNotAuthentic` when the reply is not from a holder of the same key.
    public func receive(serverHello reply: [UInt8]) throws(CryptoError) -> SessionKeys {
        guard reply.count == HandshakeMessage.serverHelloSize else { throw .handshakeMalformed }
        let serverPublic = Array(reply[..<HandshakeMessage.publicKeySize])
        guard
            HandshakeMessage.verify(
                tag: reply[HandshakeMessage.publicKeySize...], key: key.helloKey,
                label: HandshakeMessage.serverLabel, hello, serverPublic)
        else { throw .handshakeNotAuthentic }
        var shared = try ephemeral.sharedSecret(with: serverPublic[...])
        defer { wipe(&shared) }
        return try SessionKeys(presharedKey: key, sharedSecret: shared, transcript: hello + reply)
    }
}

/// The answering side (the remote agent): verifies a client hello, then answers it.
public enum ServerHandshake {
    /// How far a client's clock may differ from ours, in seconds. Wide enough for an unsynchronised VPS,
    /// narrow enough that an old recorded hello is refused; within it, `HelloReplayCache` refuses repeats.
    public static let maximumClockSkew: Int64 = 120

    /// Checks `clientHello` against each of `keys` (more than one during a key rotation) and the clock `now`
    /// (Unix seconds). Throws without producing any reply bytes when it is not authentic or too old, so a
    /// prober learns nothing. The caller checks `VerifiedHello.identity` against its replay cache before replying.
    public static func verify(
        _ clientHello: [UInt8], keys: [PreSharedKey], now: UInt64
    ) throws(CryptoError) -> VerifiedHello {
        guard clientHello.count == HandshakeMessage.clientHelloSize else { throw .handshakeMalformed }
        let publicEnd = HandshakeMessage.publicKeySize
        let clientPublic = Array(clientHello[..<publicEnd])
        let time = Array(clientHello[publicEnd..<publicEnd + 8])
        let tag = clientHello[(publicEnd + 8)...]
        guard
            let key = keys.first(where: {
                HandshakeMessage.verify(
                    tag: tag, key: $0.helloKey, label: HandshakeMessage.clientLabel, clientPublic, time)
            })
        else { throw .handshakeNotAuthentic }
        let sentAt = time.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let skew = Int64(bitPattern: now &- sentAt)
        guard abs(skew) <= maximumClockSkew else { throw .clockSkew(seconds: skew) }
        return VerifiedHello(hello: clientHello, key: key, identity: HelloIdentity(tag: Array(tag), sentAt: sentAt))
    }
}

/// What makes a client hello unique: its MAC tag (which covers a fresh ephemeral key) and its timestamp.
public struct HelloIdentity: Hashable, Sendable {
    /// The hello's MAC.
    public let tag: [UInt8]
    /// The client's clock when it sent the hello, Unix seconds.
    public let sentAt: UInt64
}

/// A client hello that is authentic and recent, ready to be answered once.
public struct VerifiedHello {
    let hello: [UInt8]
    let key: PreSharedKey
    /// For the caller's replay cache.
    public let identity: HelloIdentity

    /// The fingerprint of the key the hello was made with.
    public var keyFingerprint: String { key.fingerprint }

    /// Makes the server hello and the session keys.
    public func respond() throws(CryptoError) -> (reply: [UInt8], keys: SessionKeys) {
        let ephemeral = try EphemeralKeyPair()
        let tag = HandshakeMessage.mac(
            key: key.helloKey, label: HandshakeMessage.serverLabel, hello, ephemeral.publicKey)
        let reply = ephemeral.publicKey + tag
        var shared = try ephemeral.sharedSecret(with: hello[..<HandshakeMessage.publicKeySize])
        defer { wipe(&shared) }
        return (reply, try SessionKeys(presharedKey: key, sharedSecret: shared, transcript: hello + reply))
    }
}
