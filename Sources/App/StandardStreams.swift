import Glibc

/// Standard output and error, written with write(2) (whole, retried after a signal), without Foundation's
/// `FileHandle`. One call writes one piece, so a line from one thread never interleaves with another's.
enum StandardStreams {
    /// Writes `text` to standard error.
    static func error(_ text: String) { write(Array(text.utf8), to: STDERR_FILENO) }

    /// Writes `text` to standard output.
    static func output(_ text: String) { write(Array(text.utf8), to: STDOUT_FILENO) }

    /// Writes all of `bytes` to `descriptor`, or as much as it takes before an error (a closed pipe).
    static func write(_ bytes: [UInt8], to descriptor: Int32) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }
}
