import CSodium

/// The two per-link keys, one per direction, so that both directions can count nonces from zero
/// without ever using a nonce twice under one key.
public struct SessionKeys: Sendable {
    let clientToServer: SecretBytes
    let serverToClient: SecretBytes

    /// key = BLAKE2b-256(key: PSK session subkey, message: label ‖ X25519 shared secret ‖ client hello ‖ server hello).
    /// Binding the transcript means a tampered hello yields different keys on the two sides.
    init(presharedKey: PreSharedKey, sharedSecret: [UInt8], transcript: [UInt8]) throws(CryptoError) {
        // The hash reads its input in pieces, so the shared secret is never copied into a concatenation (a
        // temporary that would be freed unwiped); its state, which holds the secret's influence, is wiped.
        func derive(_ label: [UInt8]) throws(CryptoError) -> SecretBytes {
            try SecretBytes(count: 32) { out in
                presharedKey.sessionKey.withBytes { key in
                    // libsodium's state is 64-byte aligned, which Swift does not import as a type.
                    let size = crypto_generichash_statebytes()
                    let memory = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
                    defer {
                        sodium_memzero(memory, size)
                        memory.deallocate()
                    }
                    let state = OpaquePointer(memory)
                    _ = crypto_generichash_init(state, key, 32, 32)
                    for piece in [label, sharedSecret, transcript] {
                        _ = crypto_generichash_update(state, piece, UInt64(piece.count))
                    }
                    _ = crypto_generichash_final(state, out, 32)
                }
            }
        }
        clientToServer = try derive(HandshakeMessage.sessionLabelClientToServer)
        serverToClient = try derive(HandshakeMessage.sessionLabelServerToClient)
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
