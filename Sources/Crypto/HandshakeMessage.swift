import CSodium

/// The exact byte layouts of the two handshake messages (docs/PROTOCOL.md, "Handshake").
public enum HandshakeMessage {
    /// X25519 public key size.
    static let publicKeySize = 32
    /// HMAC-SHA-512-256 tag size.
    static let macSize = Int(crypto_auth_BYTES)
    /// Client ephemeral public key (32) ‖ Unix time in seconds, big-endian (8) ‖ MAC (32).
    public static let clientHelloSize = publicKeySize + 8 + macSize
    /// Server ephemeral public key (32) ‖ MAC (32).
    public static let serverHelloSize = publicKeySize + macSize

    /// Domain labels keep a MAC made for one message from verifying as the other.
    static let clientLabel = Array("tcptunnel/2 client hello".utf8)
    static let serverLabel = Array("tcptunnel/2 server hello".utf8)

    /// HMAC-SHA-512-256 of `label ‖ parts…` under `key`.
    static func mac(key: SecretBytes, label: [UInt8], _ parts: [UInt8]...) -> [UInt8] {
        let message = parts.reduce(label, +)
        var tag = [UInt8](repeating: 0, count: macSize)
        key.withBytes { _ = crypto_auth(&tag, message, UInt64(message.count), $0) }
        return tag
    }

    /// Checks `tag` against `label ‖ parts…` in constant time.
    static func verify(tag: ArraySlice<UInt8>, key: SecretBytes, label: [UInt8], _ parts: [UInt8]...) -> Bool {
        let message = parts.reduce(label, +)
        let tagBytes = Array(tag)
        return key.withBytes { crypto_auth_verify(tagBytes, message, UInt64(message.count), $0) == 0 }
    }
}
