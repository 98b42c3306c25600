import Crypto

/// Why incoming link bytes could not be read as frames. Every case ends the link.
package enum FrameError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Authentication failed: tampered, replayed, reordered or truncated, or sealed under another key.
    case forged
    /// The sealed length announces a body larger than the receiver accepts; rejected before buffering it.
    case tooLong(length: Int, limit: Int)
    /// The body is shorter than a frame header.
    case tooShort(length: Int)
    /// A kind byte this version does not know.
    case unknownKind(UInt8)
    /// A known kind with a payload size or stream id it never has.
    case malformed(Frame.Kind, String)
    /// A nonce counter would wrap.
    case nonceSpaceExhausted

    init(_ error: CryptoError) {
        self = error == .nonceSpaceExhausted ? .nonceSpaceExhausted : .forged
    }

    package var description: String {
        switch self {
        case .forged: "a frame failed authentication (tampered, replayed or wrong key)"
        case .tooLong(let length, let limit): "frame of \(length) bytes exceeds the limit of \(limit)"
        case .tooShort(let length): "frame of \(length) bytes is shorter than a header"
        case .unknownKind(let byte): "unknown frame kind \(byte)"
        case .malformed(let kind, let reason): "malformed \(kind) frame: \(reason)"
        case .nonceSpaceExhausted: "nonce space exhausted"
        }
    }
}
