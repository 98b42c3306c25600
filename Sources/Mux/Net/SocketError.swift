import Glibc

/// A failed socket call: which call, and the errno it set.
public struct SocketError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The POSIX call that failed, e.g. `connect`.
    public let call: String
    /// The errno value it set.
    public let code: Int32

    /// Captures the current `errno`; call it on the line right after the failing C call.
    static func lastError(_ call: String) -> SocketError {
        SocketError(call: call, code: errno)
    }

    /// Whether the call gave up because its `SO_RCVTIMEO` or `SO_SNDTIMEO` ran out.
    package var isTimeout: Bool { code == EAGAIN || code == EWOULDBLOCK }

    public var description: String { "\(call): \(String(cString: strerror(code)))" }
}
