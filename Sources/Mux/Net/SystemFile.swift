import Glibc

/// Reads small system files, such as those under /proc, to their end: they report a size of 0, so the read does
/// not trust it. No Foundation, whose readers are part of what the binary leaves out.
package enum SystemFile {
    /// The file's bytes, at most `limit` of them; `nil` if it cannot be opened or read.
    package static func read(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { break }
            bytes += chunk[..<count]
        }
        return Array(bytes.prefix(limit))
    }

    /// The file as UTF-8 text; `nil` if it cannot be read.
    package static func text(_ path: String, limit: Int = 1 << 20) -> String? {
        read(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }
}
