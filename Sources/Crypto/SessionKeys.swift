import CSodium

/// The two per-connection keys, one per direction, so that both directions can count nonces from zero
/// without ever using a nonce twice under one key; and what the connection's handshake gives a session that
/// may outlive it.
public struct SessionKeys: Sendable {
    let clientToServer: SecretBytes
    let serverToClient: SecretBytes
    /// A value both ends derive for this connection alone, which no one without the keys can compute: what a
    /// resumption's proof is bound to, so that a proof seen on one connection is worth nothing on another.
    public let binding: [UInt8]
    /// The session a link on these keys begins: what a later connection shows to continue it.
    public let resumption: SessionResumption
    /// The fingerprint of the pre-shared key the connection authenticated with (`PreSharedKey.fingerprint`).
    public let keyFingerprint: String

    /// key = BLAKE2b-256(key: PSK session subkey, message: label ‖ X25519 shared secret ‖ client hello ‖ server hello).
    /// Binding the transcript means a tampered hello yields different keys on the two sides. The binding, the
    /// session id and the resume key are derived the same way under labels of their own.
    init(presharedKey: PreSharedKey, sharedSecret: [UInt8], transcript: [UInt8]) throws(CryptoError) {
        // The hash reads its input in pieces, so the shared secret is never copied into a concatenation (a
        // temporary that would be freed unwiped); its state, which holds the secret's influence, is wiped.
        func hash(_ label: [UInt8], into out: UnsafeMutablePointer<UInt8>, count: Int) {
            presharedKey.sessionKey.withBytes { key in
                // libsodium's state is 64-byte aligned, which Swift does not import as a type.
                let size = crypto_generichash_statebytes()
                let memory = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
                defer {
                    sodium_memzero(memory, size)
                    memory.deallocate()
                }
                let state = OpaquePointer(memory)
                _ = crypto_generichash_init(state, key, 32, count)
                for piece in [label, sharedSecret, transcript] {
                    _ = crypto_generichash_update(state, piece, UInt64(piece.count))
                }
                _ = crypto_generichash_final(state, out, count)
            }
        }
        func secret(_ label: [UInt8]) throws(CryptoError) -> SecretBytes {
            try SecretBytes(count: 32) { hash(label, into: $0, count: 32) }
        }
        // Neither the binding nor the id is a key: each only names something to a peer that already has the keys.
        func value(_ label: [UInt8], count: Int) -> [UInt8] {
            [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                hash(label, into: buffer.baseAddress!, count: count)
                initialized = count
            }
        }
        clientToServer = try secret(HandshakeMessage.sessionLabelClientToServer)
        serverToClient = try secret(HandshakeMessage.sessionLabelServerToClient)
        keyFingerprint = presharedKey.fingerprint
        binding = value(HandshakeMessage.bindingLabel, count: 32)
        resumption = SessionResumption(
            id: value(HandshakeMessage.sessionIDLabel, count: SessionResumption.idSize),
            key: try secret(HandshakeMessage.resumeKeyLabel))
    }

    /// The sealer and opener for the side that sent the client hello.
    public func clientSide() -> (sealer: FrameSealer, opener: FrameOpener) {
        (FrameSealer(key: clientToServer), FrameOpener(key: serverToClient))
    }

    /// The sealer and opener for the side that answered the client hello.
    public func serverSide() -> (sealer: FrameSealer, opener: FrameOpener) {
        (FrameSealer(key: serverToClient), FrameOpener(key: clientToServer))
    }
}
