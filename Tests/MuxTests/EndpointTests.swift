import Testing

@testable import Mux

@Suite struct EndpointTests {
    @Test(
        arguments: [
            ("127.0.0.1:1082", "127.0.0.1", 1082), ("example.org:443", "example.org", 443), ("[::1]:80", "::1", 80),
            ("localhost:0", "localhost", 0),
        ] as [(String, String, UInt16)])
    func validAddressesParse(text: String, host: String, port: UInt16) throws {
        #expect(try Endpoint(parsing: text) == Endpoint(host: host, port: port))
    }

    @Test(arguments: ["", "1082", ":1082", "host:", "host:65536", "host:-1", "::1:80", "[::1]80", "host:port"])
    func malformedAddressesAreRejected(text: String) {
        #expect(throws: EndpointError.self) { try Endpoint(parsing: text) }
    }

    @Test func ipv6IsPrintedInBrackets() {
        #expect(Endpoint(host: "::1", port: 9).description == "[::1]:9")
    }

    /// Address literals are converted without the resolver and printed back by our own IPv4 formatter or
    /// inet_ntop; both must give the canonical form the resolver would.
    @Test(
        arguments: [
            ("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "0.0.0.0"), ("255.255.255.255", "255.255.255.255"),
            ("010.1.2.3", nil), ("::1", "::1"), ("2001:DB8:0:0::1", "2001:db8::1"),
            ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ] as [(String, String?)])
    func addressLiteralsResolveToThemselvesInCanonicalForm(literal: String, canonical: String?) throws {
        let endpoint = Endpoint(host: literal, port: 4000)
        guard let canonical else {
            #expect(ResolvedAddress(literal: literal, port: 4000) == nil)
            return
        }
        let addresses = try endpoint.resolve()
        #expect(addresses.count == 1)
        #expect(addresses.first?.endpoint == Endpoint(host: canonical, port: 4000))
    }

    @Test func aResolvedNameIsPrintedAsItsAddress() throws {
        let addresses = try Endpoint(host: "localhost", port: 80).resolve()
        #expect(!addresses.isEmpty)
        for address in addresses {
            #expect(["127.0.0.1", "::1"].contains(address.endpoint.host))
            #expect(address.endpoint.port == 80)
        }
    }
}
