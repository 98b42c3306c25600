import CSodium

/// The two per-link keys, one per direction, so that both directions can count nonces from zero
/// without ever using a nonce twice under one key.
public struct SessionKeys: Sendable {
    let clientToServer: SecretBytes
    let serverToClient: SecretBytes

    /// key = BLAKE2b-256(key: PSK session subkey, message: label ‖ X25519 shared secret ‖ client hello ‖ server hello).
    /// Binding the transcript means a tampered hello yields different keys on the two sides.
    init(presharedKey: PreSharedKey, sharedSecret: [UInt8], transcript: [UInt8]) throws(CryptoError) {
        func derive(_ label: [UInt8]) throws(CryptoError) -> SecretBytes {
            var input = label + sharedSecret + transcript
            defer { wipe(&input) }
            return try SecretBytes(count: 32) { out in
                presharedKey.sessionKey.withBytes { key in
                    _ = crypto_generichash(out, 32, input, UInt64(input.count), key, 32)
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
