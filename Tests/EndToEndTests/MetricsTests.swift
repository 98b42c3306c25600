import Crypto
import Foundation
import Prometheus
import Testing

@testable import Mux

/// An agent's metrics, read the way Prometheus reads them: from the text exposition of its own registry.
final class ScrapedMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let metrics: AgentMetrics

    init() {
        metrics = AgentMetrics(factory: PrometheusMetricsFactory(registry: registry))
    }

    /// The value of the sample written exactly `series` (name and labels), or nil if there is none.
    func value(_ series: String) -> Double? {
        registry.emitToString().split(separator: "\n").lazy
            .filter { $0.hasPrefix(series + " ") }
            .compactMap { Double($0.dropFirst(series.count + 1)) }
            .first
    }

    /// The sum of the samples of family `name` (every label set), or nil if it has none.
    func total(_ name: String) -> Double? {
        let values = registry.emitToString().split(separator: "\n")
            .filter { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
        return values.isEmpty ? nil : values.reduce(0, +)
    }
}

@Suite struct MetricsTests {
    @Test func countersHoldExactlyTheStreamsAndPayloadBytesCarriedAndTheRefusals() throws {
        let (up, down) = (300_001, 1_000_003)
        let target = try TestTarget { socket in
            guard receive(socket, within: 10).bytes.count == up else { return }
            try? socket.sendAll(pattern(count: down, seed: 1))
            socket.shutdown(.write)
        }
        defer { target.stop() }
        let (local, remote) = (ScrapedMetrics(), ScrapedMetrics())
        let tunnel = try ForwardingTunnel(
            target: target.endpoint,
            forwards: [
                .tunnel(listen: loopback), .local(listen: loopback, target: Endpoint(host: "127.0.0.9", port: 9)),
            ],
            metrics: (local.metrics, remote.metrics))
        defer { tunnel.stop() }

        for stream in 0..<3 {
            let reply = try exchange(pattern(count: up, seed: UInt64(stream)), through: tunnel.endpoints[0])
            #expect(reply.bytes.count == down && reply.ending == .endOfStream, "\(reply)")
        }
        #expect(isReset(at: tunnel.endpoints[1]))
        // The local agent counts the refusal just after it closes the client, so wait for it as for the slots.
        let refused = #"tcptunnel_streams_refused_total{reason="not_allowed"}"#
        #expect(
            eventually {
                [local, remote].allSatisfy { $0.value("tcptunnel_streams_active") == 0 && $0.value(refused) == 1 }
            })

        for agent in [local, remote] {
            #expect(agent.value(#"tcptunnel_stream_bytes_total{direction="to_target"}"#) == Double(3 * up))
            #expect(agent.value(#"tcptunnel_stream_bytes_total{direction="to_client"}"#) == Double(3 * down))
            #expect(agent.value("tcptunnel_streams_opened_total") == 3)
            #expect(agent.value("tcptunnel_links_up") == 1)
            #expect(agent.value("tcptunnel_link_reconnects_total") == 0)
            #expect(agent.total("tcptunnel_handshake_failures_total") == 0)
            #expect(agent.total("tcptunnel_streams_reset_total") == 0)
        }
        let linkLabels = #"link="1",remote="\#(tunnel.remote.listeningEndpoint)""#
        let roundTrip = try #require(local.value("tcptunnel_link_rtt_seconds{\(linkLabels)}"))
        #expect(roundTrip > 0 && roundTrip < 1)
        #expect(local.value("tcptunnel_link_up{\(linkLabels)}") == 1)
        // Sealed and framed, the link carries a little more than the payload each way.
        let sent = try #require(local.value(#"tcptunnel_link_bytes_total{\#(linkLabels),direction="sent"}"#))
        let received = try #require(local.value(#"tcptunnel_link_bytes_total{\#(linkLabels),direction="received"}"#))
        #expect(sent > Double(3 * up) && sent < Double(3 * up) * 1.05)
        #expect(received > Double(3 * down) && received < Double(3 * down) * 1.05)
        #expect(local.value(#"tcptunnel_link_info{\#(linkLabels),key="\#(tunnel.key.fingerprint)"}"#) == 1)
        // Named as the forward was given (port 0 here), not by the port it got.
        let forward = #"forward="\#(Forward.tunnel(listen: loopback).metricLabel)""#
        #expect(local.value(#"tcptunnel_forward_bytes_total{\#(forward),direction="to_target"}"#) == Double(3 * up))
        #expect(local.value(#"tcptunnel_forward_bytes_total{\#(forward),direction="to_client"}"#) == Double(3 * down))
        // The opener times each stream established (the refused one is counted as refused).
        #expect(local.value("tcptunnel_stream_open_seconds_count") == 3)
        #expect(remote.value("tcptunnel_stream_open_seconds_count") == 0, "the remote agent opened none")
    }

    @Test func remoteAgentCountsRejectedHandshakesAndLinksComingAndGoing() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let remoteMetrics = ScrapedMetrics()
        let key = try makeKey()
        let remote = try RemoteAgent(
            listen: loopback, allowList: AllowList(defaultTarget: target.endpoint), keys: [key],
            settings: testSettings(), metrics: remoteMetrics.metrics, logger: quietLogger)
        try remote.start()
        defer { remote.stop() }
        let stranger = try connect(to: remote.listeningEndpoint)
        try stranger.sendAll([UInt8](repeating: 7, count: HandshakeMessage.clientHeaderSize + 10))
        #expect(eventually { remoteMetrics.value("tcptunnel_handshakes_pending") == 1 })
        stranger.close()
        let notAuthentic = #"tcptunnel_handshake_failures_total{reason="not_authentic"}"#
        #expect(eventually { remoteMetrics.value(notAuthentic) == 1 })
        #expect(remoteMetrics.value(#"tcptunnel_connections_rejected_total{reason="not_authentic"}"#) == 1)
        let healthCheck = try connect(to: remote.listeningEndpoint)
        healthCheck.close()
        #expect(
            eventually {
                remoteMetrics.value(#"tcptunnel_connections_rejected_total{reason="closed_without_data"}"#) == 1
            })
        #expect(remoteMetrics.total("tcptunnel_handshake_failures_total") == 1, "a health check is no failure")
        #expect(eventually { remoteMetrics.value("tcptunnel_handshakes_pending") == 0 })

        for round in 0..<2 {
            let local = try LocalAgent(
                listen: loopback, remote: remote.listeningEndpoint, key: key, settings: testSettings(),
                logger: quietLogger)
            try local.start()
            #expect(eventually { remoteMetrics.value("tcptunnel_links_up") == 1 }, "round \(round)")
            local.stop()
            #expect(eventually { remoteMetrics.value("tcptunnel_links_up") == 0 }, "round \(round)")
        }
        #expect(remoteMetrics.value("tcptunnel_link_reconnects_total") == 1)
    }

    /// A local agent's next link on a slot takes the labels of the one before, which may still be draining: the
    /// older one's end must not remove the newer one's metrics.
    @Test func aLinksOwnMetricsOutliveTheEndOfAnOlderLinkWithTheSameLabels() {
        let scraped = ScrapedMetrics()
        let remote = Endpoint(host: "127.0.0.1", port: 7000)
        let info = #"tcptunnel_link_info{link="1",remote="127.0.0.1:7000",key="k"}"#
        let draining = scraped.metrics.linkMetrics(number: 1, remote: remote, key: "k")
        let next = scraped.metrics.linkMetrics(number: 1, remote: remote, key: "k")
        draining.release()
        #expect(scraped.value(info) == 1)
        next.bytesSent.increment(by: 5)
        #expect(scraped.value(#"tcptunnel_link_bytes_total{link="1",remote="127.0.0.1:7000",direction="sent"}"#) == 5)
        next.release()
        #expect(scraped.value(info) == nil, "gone once no link uses it")
    }
}
