import ArgumentParser
import Crypto
import Foundation
import Mux
import Testing

@testable import App

@Suite struct ConfigFileTests {
    /// Writes `text` to a new file and returns its path; the caller removes it.
    private func file(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "tcptunnel-config-\(UUID().uuidString).toml"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The one-line message `main` prints for a config file holding `text`, with its path written FILE.
    private func message(_ text: String) throws -> String? {
        let path = try file(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try TCPTunnel.parse(withConfig: ["local", "--config", path])
            return nil
        } catch let error as ConfigError {
            return error.description.replacingOccurrences(of: path, with: "FILE")
        }
    }

    static let localFile = """
        remote = ["vps.example.org:7000", "vps2.example.org:7000"]
        links = 4
        transport = "tls"
        sni = "www.example.com"
        proxy-protocol = "v2"
        key-file = ["/etc/tcptunnel/key"]
        listen = ["127.0.0.1:5432", "[::1]:5433"]
        forward = ["8080:db.internal:5432", "5353:10.0.0.53:53/udp"]
        socks = ["1080"]
        reverse = ["0.0.0.0:9000:127.0.0.1:3000"]
        socks-user-file = "/etc/tcptunnel/users"
        link-wait-timeout = 3
        log-level = "debug"
        log-format = "json"
        metrics = "127.0.0.1:9100"
        stream-window = "2M"
        max-stream-window = "32M"
        link-budget = "128M"
        agent-budget = "512M"
        handshake-timeout = 4
        connect-timeout = 5
        keepalive = 6
        dead-link-timeout = 30
        max-streams = 100
        write-timeout = 60
        idle-timeout = 600
        drain-timeout = 2.5
        socks-handshake-timeout = 3
        udp-idle-timeout = 30
        max-udp-flows = 2000
        max-udp-flows-per-source = 100
        resume-timeout = 30
        link-max-age = 3600
        link-max-bytes = "512M"
        """

    @Test func everyLocalOptionCanBeSetInTheFileAndCheckPrintsItBack() throws {
        let path = try file(Self.localFile)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let command = try #require(try TCPTunnel.parse(withConfig: ["local", "--config", path]) as? LocalCommand)
        let key = try PreSharedKey(base64: PreSharedKey.generateBase64(), source: "test")
        let report = command.checkReport(key: key, credentials: SocksCredentials(passwords: ["u": "p"]))
        for line in Self.localFile.split(separator: "\n") {
            #expect(report.contains(line), "\(line)")
        }
        #expect(report.contains("# 8 links:\n#   link 1 to vps.example.org:7000\n"))
        #expect(report.hasSuffix("#   link 8 to vps2.example.org:7000"))
        let keys = Set(TCPTunnel.configKeys(for: "local").keys).subtracting(OptionCatalog.commandLineOnly)
        let fileKeys = Set(Self.localFile.split(separator: "\n").map { String($0.prefix { $0 != " " }) })
        #expect(keys == fileKeys, "every long option is exercised by this file")
    }

    @Test func everyRemoteOptionCanBeSetInTheFileAndCheckPrintsItBack() throws {
        let remoteOnly = """
            listen = "0.0.0.0:7000"
            target = "127.0.0.1:22"
            allow = ["*.example.com:443", "10.0.0.0/8:22"]
            allow-listen = ["8000-8099"]
            max-pending = 1000
            max-pending-per-source = 10
            accept-proxy-from = ["10.0.0.5", "fd00::/8"]
            cover = "www.example.com:443"
            max-detached-sessions = 64
            max-detached-bytes = "128M"
            """
        let common = Self.localFile.split(separator: "\n").filter {
            ![
                "remote", "links", "listen", "forward", "socks", "reverse", "socks-user-file", "link-wait-timeout",
                "socks-handshake-timeout", "sni", "link-max-age", "link-max-bytes",
            ].contains(
                String($0.prefix { $0 != " " }))
        }
        let text = remoteOnly + "\n" + common.joined(separator: "\n")
        let path = try file(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let command = try #require(try TCPTunnel.parse(withConfig: ["remote", "--config", path]) as? RemoteCommand)
        let cover = (Endpoint(host: "www.example.com", port: 443), "TLS 1.3, TLS_AES_128_GCM_SHA256, x25519")
        let report = try command.checkReport(
            keys: [PreSharedKey(base64: PreSharedKey.generateBase64(), source: "t")], cover: cover)
        for line in text.split(separator: "\n") { #expect(report.contains(line), "\(line)") }
        let keys = Set(TCPTunnel.configKeys(for: "remote").keys).subtracting(OptionCatalog.commandLineOnly)
        #expect(keys == Set(text.split(separator: "\n").map { String($0.prefix { $0 != " " }) }))
    }

    @Test func aRepeatableKeyTakesOneStringWithoutBrackets() throws {
        let path = try file("remote = \"vps.example.org:7000\"\nforward = \"8080:db:5432\"\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let command = try #require(try TCPTunnel.parse(withConfig: ["local", "--config", path]) as? LocalCommand)
        #expect(try command.remoteEndpoints() == [Endpoint(host: "vps.example.org", port: 7000)])
        #expect(command.forward == ["8080:db:5432"])
    }

    @Test func relativePathsInTheFileAreRelativeToItsFolder() throws {
        let path = try file(
            "remote = \"h:1\"\nkey-file = \"tunnel.key\"\nsocks = [\"1080\"]\nsocks-user-file = \"sub/users\"\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let folder = String(path[...path.lastIndex(of: "/")!])
        let command = try #require(try TCPTunnel.parse(withConfig: ["local", "--config", path]) as? LocalCommand)
        #expect(command.common.keyFile == [folder + "tunnel.key"])
        #expect(command.socksUserFile == folder + "sub/users")
        let onTheCommandLine = try #require(
            try TCPTunnel.parse(withConfig: ["local", "--config", path, "--key-file", "here.key"]) as? LocalCommand)
        #expect(onTheCommandLine.common.keyFile == ["here.key"], "the command line's own paths stay as given")
    }

    @Test func commandLineReplacesTheFilesValueEvenForRepeatableOptions() throws {
        let path = try file(Self.localFile)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let parsed = try TCPTunnel.parse(withConfig: [
            "local", "--config", path, "--keepalive", "9", "-L", "7070:web:80", "--check", "other.host", "7001",
        ])
        let command = try #require(parsed as? LocalCommand)
        #expect(command.common.keepalive == 9)
        #expect(command.forward == ["7070:web:80"])
        #expect(command.socks == ["1080"])
        #expect(try command.remoteEndpoints() == [Endpoint(host: "other.host", port: 7001)])
    }

    @Test(
        arguments: [
            (
                "remote = \"h:1\"\nbogus = 1\n",
                "FILE:2: key 'bogus': unknown key (the keys are the long options of `tcptunnel local`; see --help)"
            ),
            (
                "remote = \"h:1\"\nforward = true\n",
                "FILE:2: key 'forward': expected an array of strings, like forward = [\"…\"]"
            ),
            (
                "remote = \"h:1\"\nkeepalive = [1]\n",
                "FILE:2: key 'keepalive': expected a string or a number, found an array"
            ),
            ("remote = \"h:1\"\ncheck = true\n", "FILE:2: key 'check': --check is given on the command line only"),
            (
                "remote = \"h:1\"\n\nstream-window = \"1K\"\n",
                "FILE:3: key 'stream-window': --stream-window: must be from 65536 bytes to 2 GiB"
            ),
            (
                "remote = \"h:1\"\ndead-link-timeout = inf\n",
                "FILE:2: key 'dead-link-timeout': --dead-link-timeout: must be more than 0 and at most 86400 seconds (inf given)"
            ),
            (
                "remote = \"h:1\"\nidle-timeout = 1e300\n",
                "FILE:2: key 'idle-timeout': --idle-timeout: must be from 0 to 604800 seconds (1e+300 given)"
            ),
            (
                "remote = \"h:1\"\nidle-timeout = -5\n",
                "FILE:2: key 'idle-timeout': --idle-timeout: cannot be negative (-5 given); give from 0 to 604800 seconds"
            ),
            (
                // Between two options: the file's key that makes it so is the one named.
                "remote = \"h:1\"\nkeepalive = 60\n",
                "FILE:2: key 'keepalive': --dead-link-timeout: must be longer than --keepalive (60 s; it is 45 s)"
            ),
            (
                "remote = \"h:1\"\nforward = [\"1:x\"]\n",
                "FILE:2: key 'forward': bad -L '1:x': expected [BIND:]PORT:HOST:HOSTPORT[/udp]"
            ),
            (
                "remote = \"h:1\"\nkeepalive = \"soon\"\n",
                "FILE:2: key 'keepalive': The value 'soon' is invalid for '--keepalive <seconds>'"
            ),
            (
                "[local]\nremote = \"h:1\"\n",
                "FILE:1:1: tables are not used: every option is a key at the top of the file"
            ),
            (
                "remote = \"h:1\"\nremote = \"h:2\"\n",
                "FILE:2:1: key 'remote' is set twice (first on line 1)"
            ),
            (
                "remote = \"h:1\n",
                "FILE:1:14: the string is not closed with '\"' on its line"
            ),
        ])
    func eachKindOfBadFileGetsOneLineNamingTheFileLineAndKey(text: String, expected: String) throws {
        #expect(try message(text) == expected)
    }

    @Test func aFileThatIsNotUTF8IsRefusedInWordsNamingItsLine() throws {
        let path = NSTemporaryDirectory() + "tcptunnel-config-\(UUID().uuidString).toml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        // "# café" in Latin-1: 0xE9 alone is no UTF-8.
        try Data("remote = \"h:1\"\n# caf".utf8 + [0xE9] + Data("\n".utf8)).write(to: URL(fileURLWithPath: path))
        do {
            _ = try TCPTunnel.parse(withConfig: ["local", "--config", path])
            Issue.record("a Latin-1 file was read")
        } catch let error as ConfigError {
            #expect(
                error.description
                    == "\(path):2: not UTF-8 text, as TOML files are (convert the file with iconv -t UTF-8, or retype that line)"
            )
        }
    }

    @Test(arguments: ["local", "remote"])
    func exampleConfigsAreValid(command: String) throws {
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../examples/\(command).toml")
        let parsed = try TCPTunnel.parse(withConfig: [command, "--config", examples.standardized.path])
        #expect(type(of: parsed).configuration.commandName == command)
    }
}
