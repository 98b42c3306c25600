import Crypto
import Glibc

/// The user names and passwords a SOCKS5 listener accepts (RFC 1929), from a file of `user:password` lines.
public struct SocksCredentials: Sendable {
    private let passwords: [[UInt8]: [UInt8]]

    /// Credentials from user names to passwords.
    package init(passwords: [String: String]) {
        self.passwords = Dictionary(uniqueKeysWithValues: passwords.map { (Array($0.utf8), Array($1.utf8)) })
    }

    private init(passwords: [[UInt8]: [UInt8]]) {
        self.passwords = passwords
    }

    /// Reads `path`: one `user:password` per line (the password may hold colons); blank lines and lines
    /// starting with `#` are skipped. The file must not be readable by group or others (mode 0600).
    public static func load(fromFile path: String) throws(SocksCredentialsError) -> SocksCredentials {
        var contents: [UInt8]
        do {
            contents = try PrivateFile.read(path, limit: 1 << 20)
        } catch .unreadable(let code) {
            throw SocksCredentialsError(path: path, reason: String(cString: strerror(code)))
        } catch .insecurePermissions(let mode) {
            throw SocksCredentialsError(
                path: path,
                reason: "mode \(String(mode, radix: 8)) lets group or others read it (run: chmod 600 \(path))")
        } catch .notRegularFile(let kind) {
            throw SocksCredentialsError(path: path, reason: "it is \(kind), not a regular file")
        } catch {
            throw SocksCredentialsError(path: path, reason: "larger than 1 MiB")
        }
        defer { wipe(&contents) }
        var passwords: [[UInt8]: [UInt8]] = [:]
        for (index, line) in contents.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .enumerated()
        {
            let line = line.last == UInt8(ascii: "\r") ? line.dropLast() : line
            if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                throw SocksCredentialsError(path: path, reason: "line \(index + 1) is not user:password")
            }
            let user = Array(line[..<colon])
            let password = Array(line[(colon + 1)...])
            guard (1...255).contains(user.count), (1...255).contains(password.count) else {
                throw SocksCredentialsError(
                    path: path, reason: "line \(index + 1): user and password must each be 1 to 255 bytes")
            }
            passwords[user] = password
        }
        guard !passwords.isEmpty else { throw SocksCredentialsError(path: path, reason: "it names no user") }
        return SocksCredentials(passwords: passwords)
    }

    /// How many users may log in.
    public var userCount: Int { passwords.count }

    /// What changed from `old` to `new`, for a reload's log line (user names, never passwords), or nil if
    /// nothing did: login turned on or off, users added or removed, passwords changed.
    public static func change(from old: SocksCredentials?, to new: SocksCredentials?) -> String? {
        switch (old, new) {
        case (nil, nil): return nil
        case (nil, let new?): return "SOCKS login required: \(new.userCount) user\(new.userCount == 1 ? "" : "s")"
        case (_?, nil): return "SOCKS login no longer required"
        case (let old?, let new?):
            func names(_ users: some Sequence<[UInt8]>) -> String {
                users.map { String(decoding: $0, as: UTF8.self) }.sorted().joined(separator: ", ")
            }
            let added = new.passwords.keys.filter { old.passwords[$0] == nil }
            let removed = old.passwords.keys.filter { new.passwords[$0] == nil }
            let changed = new.passwords.filter { user, password in old.passwords[user].map { $0 != password } ?? false }
                .keys
            let parts =
                (added.isEmpty ? [] : ["added \(names(added))"])
                + (removed.isEmpty ? [] : ["removed \(names(removed))"])
                + (changed.isEmpty ? [] : ["new password for \(names(changed))"])
            return parts.isEmpty ? nil : "SOCKS users: " + parts.joined(separator: "; ")
        }
    }

    /// Whether `password` is `user`'s. The comparison takes the same time wherever the passwords differ.
    func accepts(user: [UInt8], password: [UInt8]) -> Bool {
        guard let expected = passwords[user], expected.count == password.count else { return false }
        return zip(expected, password).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// A SOCKS credentials file that could not be used, and why.
public struct SocksCredentialsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file.
    public let path: String
    /// What is wrong with it.
    public let reason: String

    public var description: String { "cannot use SOCKS user file \(path): \(reason)" }
}
