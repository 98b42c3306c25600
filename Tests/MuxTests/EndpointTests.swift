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
}
