import Glibc

/// Why a pre-shared key could not be loaded. Each case names what the operator should fix.
public enum KeyError: Error, Equatable, Sendable {
    /// The key file could not be opened or read; `code` is the errno.
    case unreadable(path: String, code: Int32)
    /// The key file grants access to group or others; `mode` is its permission bits.
    case insecurePermissions(path: String, mode: UInt32)
    /// The key path names no regular file; `kind` says what it is ("a FIFO (named pipe)", "a directory", …).
    case notRegularFile(path: String, kind: String)
    /// The key text is not base64 of exactly 32 bytes. `source` names where it came from.
    case malformed(source: String)
    /// The process had no memory left to hold the key; `source` names where it came from.
    case outOfMemory(source: String)
}

extension KeyError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .unreadable(let path, let code):
            "cannot read key file \(path): \(String(cString: strerror(code)))"
        case .insecurePermissions(let path, let mode):
            "key file \(path) has mode \(String(mode, radix: 8)); it must not be readable by group or others "
                + "(run: chmod 600 \(path))"
        case .notRegularFile(let path, let kind):
            "key file \(path) is \(kind), not a regular file; give the file that holds the key"
        case .malformed(let source):
            "\(source) does not hold a key: expected base64 of exactly 32 bytes (make one with: tcptunnel keygen)"
        case .outOfMemory(let source):
            "no memory to hold the key from \(source) (out of memory, or of memory mappings)"
        }
    }
}
