import Crypto
import Foundation
import Testing

@Suite struct PreSharedKeyTests {
    private func temporaryFile(_ contents: String, mode: Int) throws -> String {
        let path = NSTemporaryDirectory() + "tcptunnel-key-\(UUID().uuidString)"
        try contents.write(toFile: path, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    @Test func generatedKeyLoadsFromPrivateFile() throws {
        let text = PreSharedKey.generateBase64()
        let path = try temporaryFile(text, mode: 0o600)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let loaded = try PreSharedKey.load(fromFile: path)
        #expect(loaded.fingerprint == (try PreSharedKey(base64: text, source: "text")).fingerprint)
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o660])
    func keyFileReadableByOthersIsRefused(mode: Int) throws {
        let path = try temporaryFile(PreSharedKey.generateBase64(), mode: mode)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: KeyError.insecurePermissions(path: path, mode: UInt32(mode))) {
            try PreSharedKey.load(fromFile: path)
        }
    }

    @Test func missingKeyFileIsUnreadable() {
        #expect(throws: KeyError.unreadable(path: "/nonexistent/key", code: ENOENT)) {
            try PreSharedKey.load(fromFile: "/nonexistent/key")
        }
    }

    @Test func fifoAsKeyFileIsRefusedWithoutWaitingForAWriter() throws {
        let path = NSTemporaryDirectory() + "tcptunnel-fifo-\(UUID().uuidString)"
        #expect(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        #expect(throws: KeyError.notRegularFile(path: path, kind: "a FIFO (named pipe)")) {
            try PreSharedKey.load(fromFile: path)
        }
    }

    @Test func directoryAsKeyFileIsRefused() throws {
        let path = NSTemporaryDirectory() + "tcptunnel-dir-\(UUID().uuidString)"
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: KeyError.notRegularFile(path: path, kind: "a directory")) {
            try PreSharedKey.load(fromFile: path)
        }
    }

    @Test func characterDeviceAsKeyFileIsRefused() {
        #expect(throws: KeyError.notRegularFile(path: "/dev/zero", kind: "a character device")) {
            try PreSharedKey.load(fromFile: "/dev/zero")
        }
    }

    @Test(arguments: ["", "not base64!", "AAAA", String(repeating: "A", count: 44), "QUJD\n"])
    func textThatIsNotA32ByteKeyIsMalformed(text: String) {
        #expect(throws: KeyError.malformed(source: "test")) { try PreSharedKey(base64: text, source: "test") }
    }

    @Test func surroundingWhitespaceIsIgnored() throws {
        let text = PreSharedKey.generateBase64()
        let padded = try PreSharedKey(base64: "  \(text)\n\n", source: "test")
        #expect(padded.fingerprint == (try PreSharedKey(base64: text, source: "test")).fingerprint)
    }

    @Test func differentKeysHaveDifferentFingerprints() throws {
        #expect(try makeKey().fingerprint != makeKey().fingerprint)
        #expect(try makeKey().fingerprint.count == 16)
    }
}
