import Crypto
import Foundation
import Testing

@testable import Mux

/// The TLS transport between real agents, with a real cover site (Debian's nginx, `.coverSite`) behind the remote
/// agent, and real clients (curl, openssl s_client) knocking on its port.
@Suite(.serialized, .coverSite, .timeLimit(.minutes(3)))
struct TLSTransportTests {
    /// The arguments that make a remote agent process use the TLS transport in front of `cover`.
    private func remoteArguments(_ cover: CoverSite) -> [String] {
        ["--transport", "tls", "--cover", "\(cover.endpoint)"]
    }

    private let localArguments = ["--transport", "tls", "--sni", CoverSite.serverName]

    /// A remote agent in this process, of the TLS transport in front of `cover`, forwarding to `target`.
    private func remoteAgent(cover: Endpoint, target: Endpoint, key: PreSharedKey) throws -> RemoteAgent {
        var settings = testSettings()
        settings.handshakeTimeout = 5
        let agent = try RemoteAgent(
            listen: loopback, allowList: AllowList(defaultTarget: target), keys: [key], cover: cover,
            settings: settings, logger: quietLogger)
        try agent.start()
        return agent
    }

    /// A local agent in this process, of the TLS transport, linking to `remote`.
    private func localAgent(remote: Endpoint, key: PreSharedKey) throws -> LocalAgent {
        var settings = testSettings()
        settings.handshakeTimeout = 5
        let agent = try LocalAgent(
            forwards: [.tunnel(listen: loopback)], remotes: [remote], key: key,
            transport: .tls(serverName: CoverSite.serverName), settings: settings, logger: quietLogger)
        try agent.start()
        return agent
    }

    @Test func bytesCrossTheTLSTransportExactlyBetweenAgentProcesses() throws {
        let cover = try CoverSite.current
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try ProcessTunnel(
            target: target.endpoint, remoteArguments: remoteArguments(cover), localArguments: localArguments)
        let exact = Locked(0)
        let client = tunnel.client
        let finished = try runConcurrently(20, within: 60) { index in
            if (try? echoesExactly(pattern(count: 512 * 1024, seed: UInt64(index)), through: client)) == true {
                exact.withLock { $0 += 1 }
            }
        }
        #expect(finished)
        #expect(exact.withLock { $0 } == 20)
    }

    @Test func curlAtTheAgentsPortGetsTheCoversPageAndCertificate() throws {
        let cover = try CoverSite.current
        let target = try TestTarget.echo()
        defer { target.stop() }
        let agent = try remoteAgent(cover: cover.endpoint, target: target.endpoint, key: try makeKey())
        defer { agent.stop() }
        for port in [cover.endpoint.port, agent.listeningEndpoint.port] {
            let fetched = try curl(cover: cover, port: port)
            #expect(fetched.status == 0, "curl through port \(port): \(fetched.errors)")
            #expect(fetched.output == cover.page, "the page through port \(port)")
        }
        #expect(agent.rejectedCount(.notAuthentic) == 1)
    }

    @Test func opensslAtTheAgentsPortSeesTheCoversOwnCertificateChain() throws {
        let cover = try CoverSite.current
        let target = try TestTarget.echo()
        defer { target.stop() }
        let agent = try remoteAgent(cover: cover.endpoint, target: target.endpoint, key: try makeKey())
        defer { agent.stop() }
        let direct = try certificates(seenAt: cover.endpoint.port, cover: cover)
        let relayed = try certificates(seenAt: agent.listeningEndpoint.port, cover: cover)
        let own = try String(contentsOfFile: cover.certificatePath, encoding: .utf8)
        #expect(direct.verified && relayed.verified)
        #expect(relayed.chain == direct.chain)
        #expect(
            relayed.chain.trimmingCharacters(in: .whitespacesAndNewlines)
                == own.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func replayedAndAlteredClientHellosReachTheCoverByteForByte() throws {
        let site = try CoverSite.current
        let cover = try MessageLoggingCover(certificate: site.certificatePath, key: site.keyPath)
        defer { cover.stop() }
        let target = try TestTarget.echo()
        defer { target.stop() }
        let key = try makeKey()
        let remote = try remoteAgent(cover: cover.endpoint, target: target.endpoint, key: key)
        defer { remote.stop() }
        let firstChunks = Locked<[Int: [UInt8]]>([:])
        let relay = try Relay(upstream: remote.listeningEndpoint) { connection, direction, chunk in
            guard direction == .toRemote else { return }
            firstChunks.withLock { if $0[connection] == nil { $0[connection] = chunk } }
        }
        defer { relay.stop() }
        let local = try localAgent(remote: relay.endpoint, key: key)
        #expect(eventually(within: 10) { local.isLinkUp })
        local.stop()
        let hello = try #require(firstChunks.withLock { $0[0] })
        let fields = try #require(ClientHelloFields(record: hello))
        var altered = hello
        altered[fields.sessionIDRange.lowerBound] ^= 0x01

        for bytes in [hello, altered] {
            let stranger = try connect(to: remote.listeningEndpoint)
            try stranger.sendAll(bytes)
            let answer = try stranger.receive(exactly: 5, before: .now + .seconds(10))
            #expect(TLSRecord.Header(answer).type == TLSRecord.ContentType.handshake.rawValue, "the cover answers")
            stranger.close()
        }
        let received = cover.clientHellos
        #expect(received.contains(Array(hello.dropFirst(TLSRecord.headerSize))), "the replayed hello, as recorded")
        #expect(received.contains(Array(altered.dropFirst(TLSRecord.headerSize))), "the altered hello, as altered")
        #expect(remote.rejectedCount(.replayed) == 1)
        #expect(remote.rejectedCount(.notAuthentic) == 1)
    }

    /// tshark's capture of one link between agents in this process, from its first byte to its last, that
    /// carried an echo of `bytes` each way; and the remote agent's port.
    private func capturedLink(echoing bytes: Int) throws -> (capture: PacketCapture, port: UInt16) {
        let cover = try CoverSite.current
        let target = try TestTarget.echo()
        defer { target.stop() }
        let key = try makeKey()
        let remote = try remoteAgent(cover: cover.endpoint, target: target.endpoint, key: key)
        defer { remote.stop() }
        let port = remote.listeningEndpoint.port
        let capture = try PacketCapture(port: port)
        let local = try localAgent(remote: remote.listeningEndpoint, key: key)
        #expect(eventually(within: 10) { local.isLinkUp })
        if bytes > 0 {
            #expect(try echoesExactly(pattern(count: bytes, seed: 7), through: local.listeningEndpoints[0]))
        }
        local.stop()
        capture.stop()
        return (capture, port)
    }

    @Test func aLinkIsTLSRecordsFromItsFirstByteToItsLastWithNoneMalformed() throws {
        let (capture, port) = try capturedLink(echoing: 2 << 20)
        let options = [
            "-d", "tcp.port==\(port),tls", "-o", "tcp.desegment_tcp_streams:TRUE", "-o",
            "tls.desegment_ssl_records:TRUE",
        ]
        #expect(capture.droppedPackets == 0, "tshark saw every packet")
        // TLS 1.3 records after the handshake carry their type as `opaque_type`.
        let rows = try capture.fields(
            [
                "tcp.srcport", "tcp.len", "tls.record.content_type", "tls.record.opaque_type", "tls.record.length",
                "_ws.malformed",
            ],
            // A segment TCP sent again (a loaded machine's loopback retransmits now and then) carries bytes counted
            // once already, and tshark reads no record in it.
            filter: "tcp.len > 0 && !tcp.analysis.retransmission && !tcp.analysis.spurious_retransmission",
            extra: options)
        var payload: [Bool: Int] = [:]
        var inRecords: [Bool: Int] = [:]
        var types = Set<String>()
        var malformed = 0
        for row in rows where row.count == 6 {
            let toRemote = UInt16(row[0]) != port
            payload[toRemote, default: 0] += Int(row[1]) ?? 0
            let lengths = row[4].split(separator: ",").compactMap { Int($0) }
            inRecords[toRemote, default: 0] += lengths.reduce(0) { $0 + TLSRecord.headerSize + $1 }
            types.formUnion((row[2] + "," + row[3]).split(separator: ",").map(String.init))
            if !row[5].isEmpty { malformed += 1 }
        }
        print(
            "measured: a link of 2 MiB each way: \(payload[true] ?? 0) bytes to the remote agent, \(payload[false] ?? 0) back, all in TLS records of types \(types.sorted())"
        )
        #expect(payload[true] ?? 0 > 2 << 20 && payload[false] ?? 0 > 2 << 20)
        #expect(inRecords == payload, "every byte of the link is in a TLS record tshark read")
        #expect(types == ["20", "22", "23"])
        #expect(malformed == 0)
    }

    @Test func ourClientHelloOnTheWireHasTheBrowsersJA3WithExtensionsSorted() throws {
        let (capture, port) = try capturedLink(echoing: 0)
        let ours = try capture.fields(
            ["tls.handshake.ja3_full"], filter: "tls.handshake.type == 1", extra: ["-d", "tcp.port==\(port),tls"])
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/chromium-client-hellos.pcapng").path
        let browser = try PacketCapture.fields(
            ["tls.handshake.ja3_full"], in: fixture, filter: "tls.handshake.type == 1")
        let oursNormalized = Set(ours.map { sortedExtensions($0[0]) })
        let browserNormalized = Set(browser.map { sortedExtensions($0[0]) })
        print(
            "measured: JA3 with extensions sorted, ours: \(oursNormalized.sorted()); chromium's (\(browser.count) hellos): \(browserNormalized.sorted())"
        )
        #expect(oursNormalized.count == 1 && browserNormalized.count == 1)
        #expect(oursNormalized == browserNormalized)
    }

    /// A JA3 string (version,ciphers,extensions,groups,formats; GREASE already dropped) with its extensions sorted.
    private func sortedExtensions(_ ja3: String) -> String {
        var parts = ja3.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5 else { return ja3 }
        parts[2] = parts[2].split(separator: "-").compactMap { Int($0) }.sorted().map(String.init).joined(
            separator: "-")
        return parts.joined(separator: ",")
    }

    /// curl fetching `/` from the cover's name at 127.0.0.1:`port`, trusting only the cover's certificate.
    private func curl(cover: CoverSite, port: UInt16) throws -> (status: Int32, output: Data, errors: String) {
        try DebianPackages.ensureInstalled("curl", providing: "/usr/bin/curl")
        return try run(
            "/usr/bin/curl",
            [
                "-sS", "--max-time", "10", "--cacert", cover.certificatePath, "--resolve",
                "\(CoverSite.serverName):\(port):127.0.0.1", "https://\(CoverSite.serverName):\(port)/",
            ])
    }

    /// The certificate chain `openssl s_client` is shown at 127.0.0.1:`port` for the cover's name, PEM, and
    /// whether it verified against the cover's certificate.
    private func certificates(seenAt port: UInt16, cover: CoverSite) throws -> (chain: String, verified: Bool) {
        let result = try run(
            "/usr/bin/openssl",
            [
                "s_client", "-connect", "127.0.0.1:\(port)", "-servername", CoverSite.serverName, "-CAfile",
                cover.certificatePath, "-showcerts",
            ], input: Data())
        let text = String(decoding: result.output, as: UTF8.self)
        var chain: [Substring] = []
        var inside = false
        for line in text.split(separator: "\n") {
            if line == "-----BEGIN CERTIFICATE-----" { inside = true }
            if inside { chain.append(line) }
            if line == "-----END CERTIFICATE-----" { inside = false }
        }
        return (chain.joined(separator: "\n"), text.contains("Verify return code: 0 (ok)"))
    }
}
