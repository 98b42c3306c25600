import Glibc

/// Reads small system files, such as those under /proc, to their end: they report a size of 0, so the read does
/// not trust it. No Foundation, whose readers are part of what the binary leaves out.
package enum SystemFile {
    /// The file's bytes, at most `limit` of them; `nil` if it cannot be opened or read.
    package static func read(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
        try? contents(of: path, limit: limit).get()
    }

    /// The file's bytes, at most `limit` of them, or why it could not be opened or read (the error's words are
    /// strerror's: `No such file or directory`).
    package static func contents(of path: String, limit: Int) -> Result<[UInt8], SystemFileError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(SystemFileError(code: errno)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { return .failure(SystemFileError(code: errno)) }
            if count == 0 { break }
            bytes += chunk[..<count]
        }
        return .success(Array(bytes.prefix(limit)))
    }

    /// The file as UTF-8 text; `nil` if it cannot be read.
    package static func text(_ path: String, limit: Int = 1 << 20) -> String? {
        read(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A number field of /proc/PROCESS/status (`Threads`, or `VmHWM` in kB) for a pid or `self`; `nil` if the
    /// process or the field is gone.
    package static func statusNumber(_ name: String, of process: String = "self") -> Int? {
        guard let status = text("/proc/\(process)/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("\(name):") })
        else { return nil }
        return line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap {
            Int($0)
        }
    }
}

/// Why a file could not be opened or read: its errno.
package struct SystemFileError: Error, CustomStringConvertible {
    package let code: Int32

    package var description: String { String(cString: strerror(code)) }
}
