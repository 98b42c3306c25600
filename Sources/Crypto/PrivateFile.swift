import Glibc

/// Reads small files that hold secrets (keys, passwords), refusing any whose mode grants access to group or
/// others, so that a secret copied with lax permissions is noticed before it is used.
public enum PrivateFile {
    /// Why a private file could not be read.
    public enum Failure: Error, Equatable, Sendable {
        /// The file could not be opened or read; `code` is the errno.
        case unreadable(code: Int32)
        /// The file grants access to group or others; `mode` is its permission bits.
        case insecurePermissions(mode: UInt32)
        /// The file holds more than the limit asked for.
        case tooLarge
    }

    /// The file's bytes, at most `limit` of them. The caller wipes them when done if they are secret.
    public static func read(_ path: String, limit: Int) throws(Failure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(code: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .unreadable(code: errno) }
        let mode = UInt32(info.st_mode) & 0o777
        guard mode & 0o077 == 0 else { throw .insecurePermissions(mode: mode) }
        var buffer = [UInt8](repeating: 0, count: limit + 1)
        var total = 0
        while total < buffer.count {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, $0.count - total) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                wipe(&buffer)
                throw .unreadable(code: code)
            }
            if n == 0 { break }
            total += n
        }
        guard total <= limit else {
            wipe(&buffer)
            throw .tooLarge
        }
        let contents = Array(buffer[..<total])
        wipe(&buffer)
        return contents
    }
}
