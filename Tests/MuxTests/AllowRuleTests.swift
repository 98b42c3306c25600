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

    @Test(
        arguments: [
            "db.internal", "db:0", "db:70000", "db:9-3", "db:x", "::1:80", "[::1:80", "10.0.0.1/8:22",
            "10.0.0.0/33:22", "bad name:80", "*.*.com:80", "a*b:80", "[::1]80",
        ])
    func malformedRulesAreRefusedWithTheirText(text: String) {
        #expect(throws: RuleError.self) { try AllowRule(parsing: text) }
    }

    @Test func listenRuleWithoutBindMeansLoopbackOnly() throws {
        let rule = try ListenRule(parsing: "8000-8010")
        #expect(rule.allows(Endpoint(host: "127.0.0.1", port: 8005)))
        #expect(!rule.allows(Endpoint(host: "0.0.0.0", port: 8005)))
        #expect(!rule.allows(Endpoint(host: "127.0.0.1", port: 8011)))
    }

    @Test func listenRuleBindIsExactOrStarAndNeverAName() throws {
        #expect(try ListenRule(parsing: "0.0.0.0:8080").allows(Endpoint(host: "0.0.0.0", port: 8080)))
        #expect(try ListenRule(parsing: "[::]:8080").allows(Endpoint(host: "0:0::0", port: 8080)))
        #expect(try ListenRule(parsing: "*:8080").allows(Endpoint(host: "10.1.1.1", port: 8080)))
        #expect(!(try ListenRule(parsing: "*:8080")).allows(Endpoint(host: "localhost", port: 8080)))
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

    @Test(arguments: ["8080", "8080:db", "a:b:c:d:e", "8080:db:0", "8080:bad host:80", "[::1:8080:db:80", "x:db:80"])
    func malformedLocalForwardsAreRefused(text: String) {
        #expect(throws: ForwardError.self) { try Forward.local(parsing: text) }
    }

    @Test func reverseForwardNeedsAnAddressAndAPort() {
        #expect(throws: ForwardError.self) { try Forward.reverse(parsing: "localhost:8080:127.0.0.1:80") }
        #expect(throws: ForwardError.self) { try Forward.reverse(parsing: "0:127.0.0.1:80") }
    }
}
