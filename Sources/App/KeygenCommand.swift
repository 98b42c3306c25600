import ArgumentParser
import Crypto
import Glibc

/// `tcptunnel keygen`: makes a new pre-shared key.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Print a new random 32-byte key (base64), or write it to a file with mode 0600.",
        discussion: """
            Copy the same key to both agents over a channel you trust. An existing file is never overwritten.
            """
    )

    @Option(
        name: .long,
        help: ArgumentHelp("Write the key to this new file (mode 0600) instead of standard output.", valueName: "file"),
        completion: .file())
    var out: String?

    func run() throws {
        try reportingErrors {
            let text = PreSharedKey.generateBase64()
            guard let out else {
                StandardStreams.output(text)
                return
            }
            try write(text, toNewFile: out)
            let fingerprint = try PreSharedKey.load(fromFile: out).fingerprint
            StandardStreams.error("wrote a new key to \(out) (fingerprint \(fingerprint))\n")
        }
    }

    /// Creates `path` with mode 0600 from the start (no window where it is readable by others) and writes `text`.
    private func write(_ text: String, toNewFile path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            throw ExitMessage(
                code == EEXIST
                    ? "\(path) already exists; refusing to overwrite a key (remove it first)"
                    : "cannot create \(path): \(String(cString: strerror(code)))")
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            throw ExitMessage("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
