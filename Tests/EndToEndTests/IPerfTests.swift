import Foundation
import Testing

@testable import Mux

/// `iperf3 -u` (Debian's iperf3) through the tunnel, as a user measures a UDP path: its control connection on a
/// TCP `-L`, its datagrams on a `-L …/udp` of the same port.
@Suite struct IPerfTests {
    static let binary = "/usr/bin/iperf3"

    @Test func iperf3MeasuresAUDPStreamThroughTheTunnelWithNoLoss() throws {
        try DebianPackages.ensureInstalled("iperf3", providing: Self.binary)
        let serverPort = try freeLoopbackPort()
        let server = Endpoint(host: "127.0.0.1", port: serverPort)
        let log = NSTemporaryDirectory() + "tcptunnel-iperf3-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let process = try SpawnedProcess(Self.binary, ["-s", "-B", "127.0.0.1", "-p", "\(serverPort)"], output: log)
        defer { process.stop() }
        try awaitListening(isRunning: { process.isRunning }, at: server, what: "iperf3 -s", log: log)
        // One port number for both forwards, as the iperf3 client uses one for its control connection and its
        // datagrams.
        let entry = Endpoint(host: "127.0.0.1", port: try freeLoopbackPort())
        let tunnel = try ForwardingTunnel(
            target: loopback, allow: ["127.0.0.1:\(serverPort)"],
            forwards: [.local(listen: entry, target: server), .localUDP(listen: entry, target: server)])
        defer { tunnel.stop() }
        #expect(eventually { tunnel.local.isLinkUp })
        let result = try run(
            Self.binary,
            ["-c", "127.0.0.1", "-p", "\(entry.port)", "-u", "-b", "20M", "-l", "1200", "-t", "2", "-J"])
        #expect(result.status == 0, "iperf3: \(result.errors)")
        let report = try JSONSerialization.jsonObject(with: result.output) as? [String: Any]
        let sum = (report?["end"] as? [String: Any])?["sum"] as? [String: Any]
        let packets = sum?["packets"] as? Int ?? 0
        let lost = sum?["lost_percent"] as? Double ?? 100
        #expect(packets >= 4_000, "20 Mbit/s of 1,200-byte datagrams for 2 s: \(sum ?? [:])")
        #expect(lost < 1, "\(lost) % lost: \(sum ?? [:])")
        #expect(tunnel.local.metrics.datagrams.drops(.queueFull) == 0)
    }
}
