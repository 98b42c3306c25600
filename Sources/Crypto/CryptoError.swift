/// Why a cryptographic step refused its input. None of the cases carries key material.
public enum CryptoError: Error, Equatable, Sendable {
    /// A sealed frame failed authentication: it was altered, replayed, reordered, truncated or sealed under another key.
    case forged
    /// A handshake message did not come from a peer holding the same pre-shared key (or was altered).
    case handshakeNotAuthentic
    /// A handshake message had the wrong size or an impossible padding length.
    case handshakeMalformed
    /// The client's clock differs from ours by more than the accepted skew; the hello may be a replay.
    case clockSkew(seconds: Int64)
    /// The client's hello is stamped before this agent started: it may be a recording made before a restart,
    /// which the replay cache cannot know. A client whose clock is behind ours hits this until its clock passes
    /// our start.
    case sentBeforeStart
    /// The peer's ephemeral key produced an all-zero shared secret (a low-order point).
    case weakPeerKey
    /// 2^64 frames were sealed in one direction; the link must end rather than reuse a nonce.
    case nonceSpaceExhausted
    /// No guarded memory for a key: the process is out of memory or of memory mappings (`vm.max_map_count`).
    case outOfGuardedMemory
}

extension CryptoError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .forged: "a sealed frame failed authentication"
        case .handshakeNotAuthentic: "handshake not authentic (wrong key, or not a tcptunnel peer)"
        case .handshakeMalformed: "handshake message malformed"
        case .clockSkew(let seconds): "peer clock differs by \(seconds) s (more than the accepted skew); check NTP"
        case .sentBeforeStart:
            "hello stamped before this agent started (a replay, or a peer clock behind ours); check NTP"
        case .weakPeerKey: "peer sent a weak ephemeral key"
        case .nonceSpaceExhausted: "nonce space exhausted"
        case .outOfGuardedMemory:
            "no memory for a key (out of memory, or of memory mappings: see vm.max_map_count)"
        }
    }
}
