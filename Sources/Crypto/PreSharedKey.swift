import CSodium
import Glibc

/// The 32-byte secret both agents share. Held in guarded memory; never printed.
///
/// Guarantees: a loaded key is exactly 32 bytes; a key file readable by group or others is refused.
public struct PreSharedKey: Sendable {
    /// The size of a key in bytes.
    public static let byteCount = 32
    /// Context for libsodium's KDF: exactly 8 bytes, fixed by docs/PROTOCOL.md.
    private static let kdfContext = Array("tcptunl1".utf8CString)

    /// Seals the client hello's header (XChaCha20-Poly1305 key).
    let clientHelloKey: SecretBytes
    /// Seals the server hello's header: a key of its own, so a client hello can never pass for a reply.
    let serverHelloKey: SecretBytes
    /// Mixed into both session keys with the X25519 shared secret.
    let sessionKey: SecretBytes
    /// A short, non-secret identifier of the key, safe to log and compare between machines.
    public let fingerprint: String

    /// Decodes base64 text (surrounding white space ignored). `source` names the text's origin in errors. The
    /// text itself, a `String`, cannot be wiped; a key file's bytes never become one (`load(fromFile:)`).
    public init(base64 text: String, source: String) throws(KeyError) {
        var bytes = Array(text.utf8)
        defer { wipe(&bytes) }
        try self.init(base64Bytes: bytes[...], source: source)
    }

    /// Decodes base64 bytes, ASCII white space around them ignored.
    private init(base64Bytes bytes: ArraySlice<UInt8>, source: String) throws(KeyError) {
        Sodium.ensureReady()
        let isSpace = { (byte: UInt8) in byte == 0x20 || (0x09...0x0D).contains(byte) }
        let start = bytes.firstIndex { !isSpace($0) } ?? bytes.endIndex
        let end = bytes.lastIndex { !isSpace($0) }.map { $0 + 1 } ?? start
        let text = bytes[start..<max(start, end)]
        var raw = [UInt8](repeating: 0, count: Self.byteCount + 1)
        defer { wipe(&raw) }
        var decodedCount = 0
        let status = text.withUnsafeBufferPointer { chars in
            chars.withMemoryRebound(to: CChar.self) { chars in
                sodium_base642bin(
                    &raw, raw.count, chars.baseAddress, chars.count, nil, &decodedCount, nil,
                    sodium_base64_VARIANT_ORIGINAL)
            }
        }
        guard status == 0, decodedCount == Self.byteCount else { throw .malformed(source: source) }
        do {
            try self.init(rawKey: raw)
        } catch {
            throw .outOfMemory(source: source)
        }
    }

    private init(rawKey: [UInt8]) throws(CryptoError) {
        clientHelloKey = try Self.derive(subkey: 1, from: rawKey)
        sessionKey = try Self.derive(subkey: 2, from: rawKey)
        serverHelloKey = try Self.derive(subkey: 3, from: rawKey)
        var digest = [UInt8](repeating: 0, count: 32)
        crypto_generichash(&digest, digest.count, rawKey, UInt64(Self.byteCount), nil, 0)
        fingerprint = digest.prefix(8).map { String(format2Hex: $0) }.joined()
    }

    private static func derive(subkey id: UInt64, from rawKey: [UInt8]) throws(CryptoError) -> SecretBytes {
        try SecretBytes(count: 32) { out in
            _ = crypto_kdf_derive_from_key(out, 32, id, kdfContext, rawKey)
        }
    }

    /// Loads a key file. Refuses a file whose mode grants any access to group or others, so a key
    /// copied with lax permissions is noticed before it is used.
    public static func load(fromFile path: String) throws(KeyError) -> PreSharedKey {
        // A key file is one base64 line; anything much larger is not a key file.
        var contents: [UInt8]
        do {
            contents = try PrivateFile.read(path, limit: 4095)
        } catch .unreadable(let code) {
            throw .unreadable(path: path, code: code)
        } catch .insecurePermissions(let mode) {
            throw .insecurePermissions(path: path, mode: mode)
        } catch .notRegularFile(let kind) {
            throw .notRegularFile(path: path, kind: kind)
        } catch {
            throw .malformed(source: "key file \(path)")
        }
        defer { wipe(&contents) }
        return try PreSharedKey(base64Bytes: contents[...], source: "key file \(path)")
    }

    /// Returns base64 text of 32 fresh random bytes from libsodium's CSPRNG, ending in a newline.
    public static func generateBase64() -> String {
        Sodium.ensureReady()
        var raw = [UInt8](repeating: 0, count: byteCount)
        defer { wipe(&raw) }
        randombytes_buf(&raw, raw.count)
        let encodedLength = sodium_base64_encoded_len(byteCount, sodium_base64_VARIANT_ORIGINAL)
        var encoded = [CChar](repeating: 0, count: encodedLength)
        _ = sodium_bin2base64(&encoded, encodedLength, raw, raw.count, sodium_base64_VARIANT_ORIGINAL)
        defer { encoded.withUnsafeMutableBytes { sodium_memzero($0.baseAddress, $0.count) } }
        let text = encoded.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return text + "\n"
    }
}

extension String {
    fileprivate init(format2Hex byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
    }
}
