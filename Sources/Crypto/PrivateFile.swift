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
        /// The path names no regular file: `kind` says what it is ("a FIFO", "a directory", …).
        case notRegularFile(kind: String)
    }

    /// The file's bytes, at most `limit` of them. The caller wipes them when done if they are secret.
    /// Never blocks on what is not a regular file: a FIFO, socket, device or directory is refused unread.
    public static func read(_ path: String, limit: Int) throws(Failure) -> [UInt8] {
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever. O_NOCTTY: a
        // terminal named by mistake must not become our controlling terminal.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw .unreadable(code: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .unreadable(code: errno) }
        let type = UInt32(info.st_mode) & UInt32(S_IFMT)
        guard type == UInt32(S_IFREG) else { throw .notRegularFile(kind: Self.describe(fileType: type)) }
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

    /// What a file of type `type` (the `S_IFMT` bits) is, for an error message.
    static func describe(fileType type: UInt32) -> String {
        switch type {
        case UInt32(S_IFIFO): "a FIFO (named pipe)"
        case UInt32(S_IFSOCK): "a socket"
        case UInt32(S_IFCHR): "a character device"
        case UInt32(S_IFBLK): "a block device"
        case UInt32(S_IFDIR): "a directory"
        default: "not a regular file"
        }
    }
}
