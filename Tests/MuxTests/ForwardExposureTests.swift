import Testing

@testable import Mux

@Suite struct ForwardExposureTests {
    private func endpoint(_ host: String) -> Endpoint { Endpoint(host: host, port: 1080) }

    @Test(arguments: ["0.0.0.0", "::", "192.0.2.7", "vpn.example.org"])
    func aSocksServerWithoutLoginBeyondLoopbackIsAnOpenProxy(host: String) throws {
        let warning = try #require(Forward.socks(listen: endpoint(host)).exposure(socksLoginRequired: false))
        #expect(warning.contains("open proxy") && warning.contains("--socks-user-file"))
        #expect(Forward.socks(listen: endpoint(host)).exposure(socksLoginRequired: true) == nil, "a login closes it")
    }

    @Test(arguments: ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
    func loopbackListenersAreReachableFromThisHostOnly(host: String) {
        for forward in [
            Forward.socks(listen: endpoint(host)), .tunnel(listen: endpoint(host)),
            .local(listen: endpoint(host), target: endpoint("db")),
        ] {
            #expect(forward.exposure(socksLoginRequired: false) == nil)
        }
    }

    @Test func aForwardBeyondLoopbackNamesWhatItReaches() throws {
        let local = try #require(
            Forward.local(listen: endpoint("0.0.0.0"), target: Endpoint(host: "db", port: 5432))
                .exposure(socksLoginRequired: true))
        #expect(local.contains("reaches db:5432"))
        #expect(Forward.tunnel(listen: endpoint("0.0.0.0")).exposure(socksLoginRequired: true) != nil)
        #expect(
            Forward.reverse(listen: endpoint("0.0.0.0"), target: endpoint("web")).exposure(socksLoginRequired: false)
                == nil)
    }
}
