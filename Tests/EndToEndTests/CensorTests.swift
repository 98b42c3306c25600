import Crypto
import Foundation
import Testing

@testable import Mux

/// What a censor's published detector of fully encrypted traffic makes of real links: tshark records the first
/// data packet of each direction of 200 fresh links per transport, and both rule sets of the detector
/// (`FullyEncryptedDetector`) look at each, whole and cut to a real path's first segment.
@Suite(.serialized, .coverSite, .timeLimit(.minutes(4)))
struct CensorTests {
    enum Transport: String, CaseIterable, Sendable {
        case native, tls
    }

    static let links = 200

    @Test(arguments: Transport.allCases)
    func noFirstPacketOfTwoHundredFreshLinksIsABlockingCandidate(transport: Transport) throws {
        let cover = try CoverSite.current
        let target = try TestTarget.echo()
        defer { target.stop() }
        let key = try makeKey()
        var settings = testSettings()
        settings.handshakeTimeout = 5
        let remote = try RemoteAgent(
            listen: loopback, allowList: AllowList(defaultTarget: target.endpoint), keys: [key],
            cover: transport == .tls ? cover.endpoint : nil, settings: settings, logger: quietLogger)
        try remote.start()
        defer { remote.stop() }
        let port = remote.listeningEndpoint.port
        let capture = try PacketCapture(port: port)
        let linkTransport: LinkTransport = transport == .tls ? .tls(serverName: CoverSite.serverName) : .native
        for _ in 0..<Self.links {
            let local = try LocalAgent(
                forwards: [.tunnel(listen: loopback)], remotes: [remote.listeningEndpoint], key: key,
                transport: linkTransport, settings: settings, logger: quietLogger)
            try local.start()
            #expect(eventually(within: 10) { local.isLinkUp })
            local.stop()
        }
        capture.stop()
        let firsts = try capture.firstSegments(toPort: port)
        for toRemote in [true, false] {
            let packets = firsts.filter { $0.toPort == toRemote }.map(\.payload)
            let direction = toRemote ? "to the remote agent" : "to the local agent"
            #expect(packets.count == Self.links, "first packets \(direction)")
            for rules in FullyEncryptedDetector.RuleSet.allCases {
                let candidates = packets.filter { packet in
                    FullyEncryptedDetector.isBlockingCandidate(packet, under: rules)
                        || FullyEncryptedDetector.isBlockingCandidate(
                            Array(packet.prefix(FullyEncryptedDetector.segmentSize)), under: rules)
                }
                let exemptions = Dictionary(
                    grouping: packets.flatMap { FullyEncryptedDetector.exemptions($0, under: rules) }, by: { $0 }
                ).mapValues(\.count)
                print(
                    "measured: \(transport) transport, first packets \(direction), \(rules) rules: \(candidates.count) blocking candidates of \(packets.count); exemptions held: \(exemptions.sorted { "\($0.key)" < "\($1.key)" }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))"
                )
                #expect(candidates.isEmpty)
            }
        }
    }
}
