import CSodium

/// What lets a later connection continue a link's session (docs/PROTOCOL.md §10): the session's id, which the
/// local agent names, and a key both agents derived from the session's first handshake, with which it proves
/// that it holds the session. The key never leaves the agents; a proof is bound to the connection it is shown
/// on.
public struct SessionResumption: Sendable {
    /// The bytes of a session id.
    public static let idSize = 16
    /// The bytes of a proof.
    public static let proofSize = 32

    /// Names the session; not secret from the peer, never sent outside sealed frames.
    public let id: [UInt8]
    private let key: SecretBytes

    init(id: [UInt8], key: SecretBytes) {
        self.id = id
        self.key = key
    }

    /// The proof that the holder of this session's key asks to continue it on the connection whose keys have
    /// `binding`: BLAKE2b-256(key = resume key, message = label ‖ binding).
    public func proof(binding: [UInt8]) -> [UInt8] {
        var proof = [UInt8](repeating: 0, count: Self.proofSize)
        let message = HandshakeMessage.resumeProofLabel + binding
        key.withBytes { keyBytes in
            _ = crypto_generichash(&proof, Self.proofSize, message, UInt64(message.count), keyBytes, key.count)
        }
        return proof
    }

    /// Whether `proof` is this session's proof for the connection with `binding`, compared in constant time.
    public func accepts(_ proof: [UInt8], binding: [UInt8]) -> Bool {
        guard proof.count == Self.proofSize else { return false }
        return sodium_memcmp(proof, self.proof(binding: binding), Self.proofSize) == 0
    }
}
