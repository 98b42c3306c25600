import Testing

@testable import Mux

@Suite struct AllowRuleTests {
    private func rule(_ text: String) throws -> AllowRule { try AllowRule(parsing: text) }
    private func v4(_ text: String) -> [UInt8] { IPNetwork.bytes(of: text)! }

    @Test func nameRuleMatchesThatNameAnyCaseAndTrailingDotOnlyAtItsPort() throws {
        let db = try rule("db.internal:5432")
        #expect(db.allows(name: "db.internal", port: 5432))
        #expect(db.allows(name: "DB.Internal.", port: 5432))
        #expect(!db.allows(name: "db.internal", port: 5433))
        #expect(!db.allows(name: "evil-db.internal", port: 5432))
        #expect(!db.allows(address: v4("10.0.0.1"), port: 5432))
    }

    @Test func wildcardDomainMatchesSubdomainsButNotTheDomainItself() throws {
        let web = try rule("*.example.com:443")
        #expect(web.allows(name: "www.example.com", port: 443))
        #expect(web.allows(name: "a.b.example.com", port: 443))
        #expect(!web.allows(name: "example.com", port: 443))
        #expect(!web.allows(name: "badexample.com", port: 443))
    }

    @Test func networkRuleMatchesAddressesInsideTheBlockNeverNames() throws {
        let ssh = try rule("10.0.0.0/8:22")
        #expect(ssh.allows(address: v4("10.200.3.4"), port: 22))
        #expect(!ssh.allows(address: v4("11.0.0.1"), port: 22))
        #expect(!ssh.allows(name: "10.0.0.1", port: 22))
        #expect(ssh.allowsAddresses(port: 22) && !ssh.allowsAddresses(port: 23))
    }

    @Test func ipv6RulesAreBracketedAndMappedIPv4CountsAsIPv4() throws {
        #expect(try rule("[::1]:80").allows(address: IPNetwork.bytes(of: "::1")!, port: 80))
        #expect(try rule("[fd00::/8]:*").allows(address: IPNetwork.bytes(of: "fd12::5")!, port: 9))
        let loopback = try rule("127.0.0.0/8:80")
        #expect(loopback.allows(address: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1], port: 80))
        #expect(!(try rule("10.0.0.0/8:80")).allows(address: IPNetwork.bytes(of: "::ffff:127.0.0.1")!, port: 80))
    }

    @Test func portRangesAndStarCoverWhatTheySay() throws {
        let range = try rule("host:8000-8100")
        #expect(range.allows(name: "host", port: 8000) && range.allows(name: "host", port: 8100))
        #expect(!range.allows(name: "host", port: 7999) && !range.allows(name: "host", port: 8101))
        #expect(try rule("host:*").allows(name: "host", port: 65535))
        #expect(try rule("*:443").allows(name: "anything.at.all", port: 443))
        #expect(try rule("*:443").allows(address: v4("8.8.8.8"), port: 443))
    }

    @Test func aRuleCoversBothKindsUnlessItNamesOne() throws {
        #expect(try rule("10.0.0.53:53").kinds == [.tcp, .udp])
        #expect(try rule("10.0.0.53:53/udp").kinds == [.udp])
        #expect(try rule("10.0.0.0/8:53/tcp").kinds == [.tcp])
        #expect(try rule("[fd00::/8]:53/udp").allows(address: IPNetwork.bytes(of: "fd00::53")!, port: 53))
        #expect(AllowRule(exactly: Endpoint(host: "127.0.0.1", port: 22)).kinds == [.tcp], "--target is a TCP target")
    }

    @Test func aFlowIsDecidedOnlyByRulesThatCoverUDP() throws {
        let list = AllowList(
            defaultTarget: Endpoint(host: "127.0.0.1", port: 53),
            rules: [try rule("127.0.0.2:53/tcp"), try rule("127.0.0.3:53/udp"), try rule("127.0.0.4:53")])
        func verdict(_ host: String, _ kind: TrafficKind) -> ResetReason? {
            list.decide(.endpoint(Endpoint(host: host, port: 53)), kind: kind).refusal
        }
        #expect(verdict("127.0.0.1", .udp) == .notAllowed, "the default target is TCP only")
        #expect(verdict("127.0.0.2", .udp) == .notAllowed && verdict("127.0.0.2", .tcp) == nil)
        #expect(verdict("127.0.0.3", .udp) == nil && verdict("127.0.0.3", .tcp) == .notAllowed)
        #expect(verdict("127.0.0.4", .udp) == nil && verdict("127.0.0.4", .tcp) == nil)
        #expect(list.decide(.defaultTarget, kind: .udp).refusal == .notAllowed, "a flow names its target")
    }

    @Test(
        arguments: [
            "db.internal", "db:0", "db:53/sctp", "db:53/UDP", "db:70000", "db:9-3", "db:x", "::1:80", "[::1:80",
            "10.0.0.1/8:22",
            "10.0.0.0/33:22", "bad name:80", "*.*.com:80", "a*b:80", "[::1]80",
        ])
    func malformedRulesAreRefusedWithTheirText(text: String) {
        #expect(throws: RuleError.self) { try AllowRule(parsing: text) }
    }

    @Test func listenRuleWithoutBindMeansLoopbackOnly() throws {
        let rule = try ListenRule(parsing: "8000-8010")
        #expect(rule.allows(Endpoint(host: "127.0.0.1", port: 8005), kind: .tcp))
        #expect(!rule.allows(Endpoint(host: "0.0.0.0", port: 8005), kind: .tcp))
        #expect(!rule.allows(Endpoint(host: "127.0.0.1", port: 8011), kind: .tcp))
    }

    @Test func listenRuleBindIsExactOrStarAndNeverAName() throws {
        #expect(try ListenRule(parsing: "0.0.0.0:8080").allows(Endpoint(host: "0.0.0.0", port: 8080), kind: .tcp))
        #expect(try ListenRule(parsing: "[::]:8080").allows(Endpoint(host: "0:0::0", port: 8080), kind: .tcp))
        #expect(try ListenRule(parsing: "*:8080").allows(Endpoint(host: "10.1.1.1", port: 8080), kind: .tcp))
        #expect(!(try ListenRule(parsing: "*:8080")).allows(Endpoint(host: "localhost", port: 8080), kind: .tcp))
        #expect(throws: RuleError.self) { try ListenRule(parsing: "localhost:8080") }
        #expect(throws: RuleError.self) { try ListenRule(parsing: "8080-80") }
    }
}

@Suite struct ForwardParsingTests {
    @Test func localForwardDefaultsToLoopbackAndTakesBracketedIPv6() throws {
        #expect(
            try Forward.local(parsing: "8080:db.internal:5432")
                == .local(
                    listen: Endpoint(host: "127.0.0.1", port: 8080), target: Endpoint(host: "db.internal", port: 5432)))
        #expect(
            try Forward.local(parsing: "[::1]:8080:[2001:db8::7]:443")
                == .local(listen: Endpoint(host: "::1", port: 8080), target: Endpoint(host: "2001:db8::7", port: 443)))
        #expect(
            try Forward.local(parsing: "0.0.0.0:8080:10.0.0.5:22")
                == .local(listen: Endpoint(host: "0.0.0.0", port: 8080), target: Endpoint(host: "10.0.0.5", port: 22)))
    }

    @Test func socksAndReverseForwardsParse() throws {
        #expect(try Forward.socks(parsing: "1080") == .socks(listen: Endpoint(host: "127.0.0.1", port: 1080)))
        #expect(try Forward.socks(parsing: "[::1]:1080") == .socks(listen: Endpoint(host: "::1", port: 1080)))
        #expect(
            try Forward.reverse(parsing: "0.0.0.0:8443:127.0.0.1:443")
                == .reverse(
                    listen: Endpoint(host: "0.0.0.0", port: 8443), target: Endpoint(host: "127.0.0.1", port: 443)))
    }

    @Test(
        arguments: [
            "8080", "8080:db", "a:b:c:d:e", "8080:db:0", "8080:bad host:80", "[::1:8080:db:80", "x:db:80",
            "53:db:53/quic", "53:db:53/",
        ])
    func malformedLocalForwardsAreRefused(text: String) {
        #expect(throws: ForwardError.self) { try Forward.local(parsing: text) }
    }

    @Test func localForwardEndingInUDPCarriesDatagramsAndTCPIsTheDefault() throws {
        let (listen, target) = (Endpoint(host: "127.0.0.1", port: 5353), Endpoint(host: "10.0.0.53", port: 53))
        #expect(try Forward.local(parsing: "5353:10.0.0.53:53/udp") == .localUDP(listen: listen, target: target))
        #expect(try Forward.local(parsing: "5353:10.0.0.53:53/tcp") == .local(listen: listen, target: target))
        #expect(
            try Forward.local(parsing: "[::1]:5353:[2001:db8::53]:53/udp")
                == .localUDP(
                    listen: Endpoint(host: "::1", port: 5353), target: Endpoint(host: "2001:db8::53", port: 53)))
    }

    @Test func reverseForwardEndingInUDPCarriesDatagrams() throws {
        let (listen, target) = (Endpoint(host: "127.0.0.1", port: 5353), Endpoint(host: "127.0.0.1", port: 53))
        #expect(try Forward.reverse(parsing: "5353:127.0.0.1:53/udp") == .reverseUDP(listen: listen, target: target))
        #expect(try Forward.reverse(parsing: "5353:127.0.0.1:53/tcp") == .reverse(listen: listen, target: target))
    }

    @Test func aListenRuleCoversBothKindsUnlessItNamesOne() throws {
        let address = Endpoint(host: "127.0.0.1", port: 5353)
        #expect(try ListenRule(parsing: "5353").kinds == [.tcp, .udp])
        #expect(try ListenRule(parsing: "5353/udp").allows(address, kind: .udp))
        #expect(!(try ListenRule(parsing: "5353/udp")).allows(address, kind: .tcp))
        #expect(!(try ListenRule(parsing: "127.0.0.1:5300-5399/tcp")).allows(address, kind: .udp))
    }

    @Test func reverseForwardNeedsAnAddressAndAPort() {
        #expect(throws: ForwardError.self) { try Forward.reverse(parsing: "localhost:8080:127.0.0.1:80") }
        #expect(throws: ForwardError.self) { try Forward.reverse(parsing: "0:127.0.0.1:80") }
    }
}
