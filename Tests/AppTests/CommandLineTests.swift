import ArgumentParser
import Glibc
import Mux
import Testing

@testable import App

@Suite struct CommandLineTests {
    private func parse<T: ParsableCommand>(_ arguments: [String], as type: T.Type) throws -> T {
        try #require(try TCPTunnel.parseAsRoot(arguments) as? T)
    }

    /// The message a command line is refused with, through the same parsing `main` does; `nil` if it parses.
    private func refusal(_ arguments: [String]) -> String? {
        do {
            _ = try TCPTunnel.parse(withConfig: arguments)
            return nil
        } catch let error as UnknownOptionError {
            return error.message
        } catch {
            return TCPTunnel.message(for: error)
        }
    }

    @Test(
        arguments: [
            (
                ["local", "--remote", "h:1", "--listn", "127.0.0.1:1"],
                "Unknown option '--listn'. Did you mean '--listen'?"
            ),
            (
                ["remote", "--listen", "127.0.0.1:7", "--targt", "127.0.0.1:22"],
                "Unknown option '--targt'. Did you mean '--target'?"
            ),
            (["local", "--remote", "h:1", "--frobnicate", "x"], "Unknown option '--frobnicate'"),
            (["local", "--remote", "h:1", "--key", "c2VjcmV0"], OptionCatalog.keyOnCommandLine),
            (["remote", "--listen", "127.0.0.1:7", "--key=c2VjcmV0"], OptionCatalog.keyOnCommandLine),
        ])
    func aMistypedOptionIsReportedAsUnknownEvenWhenItsValueLooksLikeAnArgument(arguments: [String], message: String) {
        #expect(refusal(arguments) == message)
    }

    @Test(
        arguments: [
            ["local", "--remote", "127.0.0.1:0"], ["local", "127.0.0.1", "0"],
            ["remote", "--listen", "127.0.0.1:7000", "--target", "127.0.0.1:0"],
        ])
    func portZeroIsRefusedWhereTheAgentConnects(arguments: [String]) {
        #expect(refusal(arguments)?.contains("port 0 cannot be connected to") == true)
    }

    @Test func portZeroStillMeansAnyPortWhereTheAgentListens() throws {
        let command = try parse(["remote", "--listen", "127.0.0.1:0"], as: RemoteCommand.self)
        #expect(try command.listenEndpoint().port == 0)
    }

    @Test func localSeedFormTakesRemoteHostAndPort() throws {
        let command = try parse(["local", "example.org", "4000"], as: LocalCommand.self)
        #expect(try command.remoteEndpoints() == [Endpoint(host: "example.org", port: 4000)])
        #expect(try command.forwards() == [.tunnel(listen: Endpoint(host: "127.0.0.1", port: 1082))])
    }

    @Test func remoteSeedFormTakesBindHostAndPort() throws {
        let command = try parse(["remote", "0.0.0.0", "4000"], as: RemoteCommand.self)
        #expect(try command.listenEndpoint() == Endpoint(host: "0.0.0.0", port: 4000))
        #expect(command.target == "127.0.0.1:1081")
    }

    @Test func optionFormsOverrideDefaults() throws {
        let local = try parse(
            ["local", "--listen", "0.0.0.0:9000", "--remote", "[2001:db8::1]:443", "--key-file", "k"],
            as: LocalCommand.self)
        #expect(try local.remoteEndpoints() == [Endpoint(host: "2001:db8::1", port: 443)])
        #expect(try local.forwards() == [.tunnel(listen: Endpoint(host: "0.0.0.0", port: 9000))])
        #expect(local.common.keyFile == ["k"])
        let remote = try parse(["remote", "--listen", "0.0.0.0:443", "--target", "db:5432"], as: RemoteCommand.self)
        #expect(try remote.listenEndpoint() == Endpoint(host: "0.0.0.0", port: 443))
        #expect(remote.target == "db:5432")
    }

    @Test func forwardsOfEveryKindCombineAndReplaceTheDefaultListen() throws {
        let command = try parse(
            [
                "local", "--remote", "h:1", "-L", "8080:db:5432", "--forward", "[::1]:8081:10.0.0.2:80", "-D", "1080",
                "-R", "0.0.0.0:9000:127.0.0.1:3000",
            ], as: LocalCommand.self)
        #expect(
            try command.forwards() == [
                .local(listen: Endpoint(host: "127.0.0.1", port: 8080), target: Endpoint(host: "db", port: 5432)),
                .local(listen: Endpoint(host: "::1", port: 8081), target: Endpoint(host: "10.0.0.2", port: 80)),
                .socks(listen: Endpoint(host: "127.0.0.1", port: 1080)),
                .reverse(
                    listen: Endpoint(host: "0.0.0.0", port: 9000), target: Endpoint(host: "127.0.0.1", port: 3000)),
            ])
    }

    @Test func remoteRulesAreParsedWithTheDefaultTargetAlwaysAllowed() throws {
        let command = try parse(
            ["remote", "--listen", "0.0.0.0:443", "--allow", "*.example.com:443", "--allow-listen", "8000-8100"],
            as: RemoteCommand.self)
        let allowList = try command.allowList()
        #expect(allowList.defaultTarget == Endpoint(host: "127.0.0.1", port: 1081))
        #expect(allowList.rules.map(\.description) == ["*.example.com:443"])
        #expect(try command.listenRules().map(\.description) == ["8000-8100"])
    }

    /// Every duration and size has an upper bound: past it, or infinite, a value would overflow a deadline or a
    /// socket timeout and trap the agent at its first link (and `--check` while printing it).
    @Test(arguments: [
        (
            ["--dead-link-timeout", "inf"],
            "--dead-link-timeout: must be more than 0 and at most 86400 seconds (inf given)"
        ),
        (
            ["--dead-link-timeout", "86401"],
            "--dead-link-timeout: must be more than 0 and at most 86400 seconds (86401 given)"
        ),
        (["--idle-timeout", "1e300"], "--idle-timeout: must be from 0 to 604800 seconds (1e+300 given)"),
        (["--idle-timeout=-5"], "--idle-timeout: cannot be negative (-5 given); give from 0 to 604800 seconds"),
        (["--write-timeout", "inf"], "--write-timeout: must be from 0 to 604800 seconds (inf given)"),
        (["--drain-timeout", "3601"], "--drain-timeout: must be from 0 to 3600 seconds (3601 given)"),
        (
            ["--handshake-timeout", "nan"],
            "--handshake-timeout: must be more than 0 and at most 300 seconds (nan given)"
        ),
        (["--connect-timeout", "301"], "--connect-timeout: must be more than 0 and at most 300 seconds (301 given)"),
        (["--keepalive", "3601"], "--keepalive: must be more than 0 and at most 3600 seconds (3601 given)"),
        (
            ["--link-wait-timeout", "inf"],
            "--link-wait-timeout: must be more than 0 and at most 3600 seconds (inf given)"
        ),
        (
            ["--keepalive", "60"],
            "--dead-link-timeout: must be longer than --keepalive (60 s; it is 45 s)"
        ),
        (["--stream-window", "3G"], "--stream-window: must be from 65536 bytes to 2 GiB"),
        (["--link-budget", "65G"], "--link-budget: must be from the stream window to 64 GiB"),
        (["--max-streams", "1000001"], "--max-streams: must be from 1 to 1000000"),
    ])
    func outOfRangeDurationOrSizeIsAUsageErrorNamingItsBound(option: [String], message: String) {
        do {
            _ = try TCPTunnel.parseAsRoot(["local", "--remote", "h:1"] + option)
            Issue.record("expected a usage error for \(option)")
        } catch {
            #expect(TCPTunnel.message(for: error) == message)
        }
    }

    @Test func badForwardOrRuleMessageNamesTheOptionAndTheProblem() {
        let cases: [([String], String)] = [
            (
                ["local", "--remote", "h:1", "-L", "8080:db"],
                "bad -L '8080:db': expected [BIND:]PORT:HOST:HOSTPORT[/udp]"
            ),
            (
                ["remote", "--listen", "h:1", "--allow", "db"],
                "--allow: bad rule 'db': expected HOST:PORTS"
            ),
            (
                ["local", "--remote", "h:1", "--socks-user-file", "f"],
                "--socks-user-file is for SOCKS listeners: give -D/--socks too"
            ),
            (
                ["remote", "--listen", "h:1", "--max-pending", "10", "--max-pending-per-source", "20"],
                "--max-pending-per-source: must be from 1 to --max-pending"
            ),
            (["remote", "--listen", "h:1", "--max-pending", "0"], "--max-pending: must be from 1 to 1000000"),
            (
                ["local", "--remote", "h:1", "--socks-handshake-timeout", "0"],
                "--socks-handshake-timeout: must be more than 0 and at most 300 seconds (0 given)"
            ),
            (
                ["local", "--remote", "h:1", "--udp-idle-timeout", "0"],
                "--udp-idle-timeout: must be more than 0 and at most 604800 seconds (0 given)"
            ),
            (
                ["remote", "--listen", "h:1", "--max-udp-flows", "10", "--max-udp-flows-per-source", "20"],
                "--max-udp-flows-per-source: must be from 1 to --max-udp-flows"
            ),
            (
                ["local", "--remote", "h:1", "-R", "localhost:53:h:53/udp"],
                "bad -R 'localhost:53:h:53/udp': BIND must be an IP address and PORT from 1 to 65535"
            ),
            (
                ["remote", "--listen", "h:1", "--allow", "h:53/sctp"],
                "--allow: bad rule 'h:53/sctp': the ports must be a port, LOW-HIGH or *, from 1 to 65535"
            ),
        ]
        for (arguments, message) in cases {
            do {
                _ = try TCPTunnel.parseAsRoot(arguments)
                Issue.record("expected a usage error for \(arguments)")
            } catch {
                #expect(TCPTunnel.message(for: error) == message)
            }
        }
    }

    @Test(arguments: [
        (
            ["remote", "--listen", "h:1", "--transport", "tls"],
            "--transport tls needs --cover HOST:PORT: a real HTTPS site whose answers this agent borrows"
        ),
        (
            ["remote", "--listen", "h:1", "--cover", "www.example.com:443"],
            "--cover is for --transport tls (this agent uses --transport native)"
        ),
        (
            ["local", "--remote", "h:1", "--transport", "tls"],
            "--transport tls needs --sni NAME: the DNS name of the remote agent's --cover site"
        ),
        (
            ["local", "--remote", "h:1", "--sni", "www.example.com"],
            "--sni is for --transport tls (this agent uses --transport native)"
        ),
        (
            ["local", "--remote", "h:1", "--transport", "tls", "--sni", "192.0.2.1"],
            "--sni 192.0.2.1: give the cover site's DNS name, as a browser would send it (like www.example.com)"
        ),
        (
            ["local", "--remote", "h:1", "--transport", "tls", "--sni", "localhost"],
            "--sni localhost: give the cover site's DNS name, as a browser would send it (like www.example.com)"
        ),
        (
            ["local", "--remote", "h:1", "--transport", "tls", "--sni", "a_b.example.com"],
            "--sni a_b.example.com: give the cover site's DNS name, as a browser would send it (like www.example.com)"
        ),
    ])
    func transportOptionsThatDoNotGoTogetherSayWhatIsMissing(arguments: [String], message: String) {
        do {
            _ = try TCPTunnel.parseAsRoot(arguments)
            Issue.record("expected a usage error for \(arguments)")
        } catch {
            #expect(TCPTunnel.message(for: error) == message)
        }
    }

    @Test func transportOptionsBecomeTheAgentsTransport() throws {
        let local = try parse(
            ["local", "--remote", "h:1", "--transport", "tls", "--sni", "www.example.com"], as: LocalCommand.self)
        #expect(try local.linkTransport() == .tls(serverName: "www.example.com"))
        #expect(try parse(["local", "--remote", "h:1"], as: LocalCommand.self).linkTransport() == .native)
        let remote = try parse(
            ["remote", "--listen", "h:1", "--transport", "tls", "--cover", "www.example.com:443"],
            as: RemoteCommand.self)
        #expect(try remote.coverEndpoint() == Endpoint(host: "www.example.com", port: 443))
        #expect(try parse(["remote", "--listen", "h:1"], as: RemoteCommand.self).coverEndpoint() == nil)
    }

    @Test(arguments: [
        ["local"], ["local", "host"], ["local", "host", "1", "--remote", "h:2"], ["local", "--remote", "nohost"],
        ["local", "--remote", "h:70000"], ["local", "--remote", "h:1", "--listen", "x"], ["remote"],
        ["remote", "--listen", "h:1", "--target", "t"], ["remote", "h", "port"],
        ["local", "--remote", "h:1", "--stream-window", "1K"], ["local", "--remote", "h:1", "--keepalive", "0"],
        ["local", "--remote", "h:1", "--keepalive", "60", "--dead-link-timeout", "30"],
        ["local", "--remote", "h:1", "-R", "localhost:80:127.0.0.1:80"], ["local", "--remote", "h:1", "-D", "x"],
        ["remote", "--listen", "h:1", "--allow-listen", "localhost:80"],
        ["remote", "--listen", "h:1", "--allow", "10.0.0.1/8:22"],
    ])
    func badUsageIsRejectedBeforeRunning(arguments: [String]) {
        #expect(throws: (any Error).self) { try TCPTunnel.parseAsRoot(arguments) }
    }

    @Test func badAddressMessageNamesTheOptionAndTheProblem() {
        do {
            _ = try TCPTunnel.parseAsRoot(["local", "--remote", "example.org"])
            Issue.record("expected a usage error")
        } catch {
            #expect(TCPTunnel.message(for: error) == "--remote: bad address 'example.org': expected HOST:PORT")
        }
    }

    @Test(arguments: [("1M", 1 << 20), ("256K", 256 << 10), ("2MiB", 2 << 20), ("1g", 1 << 30), ("4096", 4096)])
    func byteCountsAcceptBinarySuffixes(text: String, bytes: Int) {
        #expect(ByteCount(argument: text)?.bytes == bytes)
    }

    @Test(arguments: ["", "M", "1X", "-1", "1.5M"])
    func malformedByteCountsAreRejected(text: String) {
        #expect(ByteCount(argument: text) == nil)
    }

    @Test func optionsBecomeSettings() throws {
        let command = try parse(
            [
                "local", "--remote", "h:1", "--stream-window", "4M", "--link-budget", "128M", "--keepalive", "5",
                "--dead-link-timeout", "20", "--link-wait-timeout", "3",
            ],
            as: LocalCommand.self)
        #expect(command.common.settings.streamWindow == 4 << 20)
        #expect(command.common.settings.linkReceiveBudget == 128 << 20)
        #expect(command.common.settings.keepaliveInterval == 5)
        #expect(command.common.settings.deadLinkTimeout == 20)
        #expect(command.linkWaitTimeout == 3)
    }
}

@Suite struct BenchCommandLineTests {
    private func parse(_ arguments: [String]) throws -> BenchCommand {
        try #require(try TCPTunnel.parseAsRoot(["bench"] + arguments) as? BenchCommand)
    }

    @Test func roundTripTimeIsReadInMillisecondsOrSeconds() throws {
        #expect(try parse(["--rtt", "100ms"]).rtt == 100)
        #expect(try parse(["--rtt", "0.25s"]).rtt == 250)
        #expect(try parse(["--rtt", "40"]).rtt == 40)
        #expect(throws: (any Error).self) { try parse(["--rtt", "soon"]) }
    }

    @Test func streamCountsDefaultToTheDocumentedListAndRejectNonNumbers() throws {
        #expect(try parse([]).streams == [1, 4, 16, 64, 256, 1024])
        #expect(try parse(["--streams", "2, 8"]).streams == [2, 8])
        #expect(throws: (any Error).self) { try parse(["--streams", "1,x"]) }
        #expect(throws: (any Error).self) { try parse(["--streams", "0"]) }
    }

    @Test func bandwidthCapNeedsALongPath() {
        #expect(throws: (any Error).self) { try parse(["--bandwidth", "10"]) }
        #expect(throws: Never.self) { try parse(["--rtt", "100ms", "--bandwidth", "10"]) }
    }

    @Test func emulatedPathIsReadFromItsUnitsAndRefusesTheRelayBesideIt() throws {
        #expect(throws: (any Error).self) { try parse(["--path", "10MB/s"]) }
        #expect(throws: (any Error).self) { try parse(["--path", "25ms", "--rtt", "50ms"]) }
        #expect(throws: (any Error).self) { try parse(["--path", "25ms", "--target", "127.0.0.1:9"]) }
        if geteuid() == 0 {
            #expect(try parse(["--path", "25ms,10MB/s,1%"]).path?.loss == 0.01)
        }
    }
}
