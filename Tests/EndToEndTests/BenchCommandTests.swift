import Foundation
import Testing

/// `tcptunnel bench` as a user runs it: the real binary starting its own echo target and agents. A short
/// run, so that the benchmark cannot rot between the full runs that docs/BENCHMARKS.md records.
@Suite struct BenchCommandTests {
    @Test func shortBenchRunMeasuresEveryLoadAndWritesJSON() throws {
        let json = NSTemporaryDirectory() + "tcptunnel-bench-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: json) }
        let bench = try AgentProcess([
            "bench", "--streams", "1,3", "--seconds", "0.1", "--peers", "tcptunnel-tls,direct", "--hold", "50",
            "--responses", "1K,1M", "--response-connections", "1,3", "--clients", "2,20", "--datagram-flows", "1,2",
            "--idle-flows", "100", "--outages", "2", "--json", json,
        ])
        #expect(bench.waitForExit(seconds: 120) == 0, "bench: \(bench.standardError)")

        let report =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
        let routes = report?["routes"] as? [[String: Any]] ?? []
        #expect(routes.compactMap { $0["name"] as? String } == ["tcptunnel", "tcptunnel-tls", "direct"])
        for route in routes {
            let points = route["points"] as? [[String: Any]] ?? []
            #expect(points.compactMap { $0["streams"] as? Int } == [1, 3])
            for point in points {
                let bulk = point["bulk"] as? [String: Any]
                let requests = point["requests"] as? [String: Any]
                let connects = point["connects"] as? [String: Any]
                #expect(bulk?["verified"] as? Bool == true)
                #expect((bulk?["bytes"] as? Int ?? 0) > 0)
                #expect((requests?["count"] as? Int ?? 0) > 0)
                #expect((connects?["count"] as? Int ?? 0) > 0)
                #expect((connects?["firstResponseP50Microseconds"] as? Double ?? 0) > 0)
                let interactive = point["interactive"] as? [String: Any]
                #expect(((interactive?["requests"] as? [String: Any])?["count"] as? Int ?? 0) > 0)
                #expect((interactive?["bulk"] as? [String: Any])?["verified"] as? Bool == true)
            }
            #expect((route["halfClose"] as? [String: Any])?["intact"] as? Bool == true)
            let responses = route["responses"] as? [[String: Any]] ?? []
            #expect(responses.compactMap { $0["size"] as? Int } == [1024, 1 << 20, 1024, 1 << 20])
            #expect(responses.compactMap { $0["connections"] as? Int } == [1, 1, 3, 3])
            for response in responses {
                #expect(response["failedConnections"] as? Int == 0, "\(response)")
                #expect((response["count"] as? Int ?? 0) > 0)
            }
            let clients = route["manyClients"] as? [[String: Any]] ?? []
            #expect(clients.compactMap { $0["clients"] as? Int } == [2, 20])
            for load in clients {
                #expect(load["failure"] == nil, "\(load)")
                #expect((load["count"] as? Int ?? 0) > 0)
                // The direct route has no processes whose threads could switch.
                #expect((load["contextSwitchesPerRequest"] != nil) == (route["name"] as? String != "direct"))
            }
            try expectDatagramLoads(route, flows: [1, 2])
            try expectOutages(route, count: 2, cause: "connection killed (ss -K)")
        }
        let tunnelPoint = (routes.first?["points"] as? [[String: Any]])?.first
        #expect(((tunnelPoint?["local"] as? [String: Any])?["peakThreads"] as? Int ?? 0) > 0)
        let hold = report?["hold"] as? [String: Any]
        #expect(hold?["usable"] as? Int == 50)
        let idleFlows = report?["idleFlows"] as? [String: Any]
        #expect(idleFlows?["usable"] as? Int == 100)
        #expect((idleFlows?["remoteAfter"] as? Int ?? 0) > 0)
    }

    /// Checks that `route` ran the UDP loads: round trips on each of `flows`, a stream ladder starting at
    /// 1,250/s, and round trips beside bulk streams.
    /// A tcptunnel route's streams went on through every outage, every byte exact; `direct` has no link to break.
    private func expectOutages(_ route: [String: Any], count: Int, cause: String) throws {
        let name = route["name"] as? String ?? "?"
        guard name.hasPrefix("tcptunnel") else { return #expect(route["outages"] == nil, "\(name)") }
        let outages = try #require(route["outages"] as? [String: Any], "\(name) ran no outage load")
        #expect(outages["cause"] as? String == cause)
        #expect(outages["interactiveFailure"] == nil, "\(name): \(outages)")
        #expect((outages["bulk"] as? [String: Any])?["verified"] as? Bool == true, "\(name): \(outages)")
        let pauses = outages["pausesMilliseconds"] as? [Any] ?? []
        #expect(pauses.count == count && pauses.allSatisfy { $0 is Double }, "\(name): \(pauses)")
    }

    private func expectDatagramLoads(_ route: [String: Any], flows: [Int]) throws {
        let name = route["name"] as? String ?? "?"
        let datagrams = try #require(route["datagrams"] as? [String: Any], "\(name) ran no UDP loads")
        let requests = datagrams["requests"] as? [[String: Any]] ?? []
        #expect(requests.compactMap { $0["flows"] as? Int } == flows, "\(name)")
        #expect(requests.allSatisfy { ($0["requestsPerSecond"] as? Double ?? 0) > 0 }, "\(name): \(requests)")
        let stream = datagrams["stream"] as? [[String: Any]] ?? []
        #expect(stream.first?["offeredPerSecond"] as? Double == 1_250, "\(name): \(stream)")
        #expect(stream.allSatisfy { ($0["sent"] as? Int ?? 0) > 0 }, "\(name): \(stream)")
        let beside = datagrams["besideBulk"] as? [String: Any]
        #expect(((beside?["requests"] as? [String: Any])?["requestsPerSecond"] as? Double ?? 0) > 0, "\(name)")
        guard name.hasPrefix("tcptunnel") else { return }
        // Up to the largest UDP carries, whatever the path's MTU: across the emulated path's TUN devices that is
        // 1,500 bytes, and tcptunnel carries each datagram whole in its link's TCP segments.
        let whole = datagrams["wholeDatagrams"] as? [[String: Any]] ?? []
        #expect(whole.compactMap { $0["size"] as? Int } == [1_472, 1_473, 9_000, 65_507], "\(name)")
        #expect(whole.allSatisfy { $0["intact"] as? Bool == true }, "\(name): \(whole)")
    }

    /// A forwarded client's first request goes out with its stream's OPEN (0-RTT, docs/PROTOCOL.md §6): across a
    /// 200 ms round trip its first response takes one round trip, as straight through the relay, not two. The
    /// bound leaves 30 ms for the machine, less than the 40 ms a delayed ACK would add if the relay held the
    /// OPEN's first DATA behind it (Nagle's algorithm, which the relay turns off as a router would).
    @Test func aNewConnectionsFirstResponseTakesOneRoundTripNotTwo() throws {
        let json = NSTemporaryDirectory() + "tcptunnel-bench-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: json) }
        let bench = try AgentProcess([
            "bench", "--rtt", "200ms", "--streams", "1", "--seconds", "1", "--peers", "direct", "--responses", "none",
            "--clients", "none", "--json", json,
        ])
        #expect(bench.waitForExit(seconds: 90) == 0, "bench: \(bench.standardError)")
        let report =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
        let firstResponses = (report?["routes"] as? [[String: Any]] ?? []).map { route in
            let point = (route["points"] as? [[String: Any]])?.first
            return (point?["connects"] as? [String: Any])?["firstResponseP50Microseconds"] as? Double ?? 0
        }
        try #require(firstResponses.count == 2)
        #expect(firstResponses[1] >= 200_000, "the direct route crosses the 200 ms relay: \(firstResponses)")
        #expect(firstResponses[0] >= 200_000 && firstResponses[0] < 230_000, "tcptunnel: \(firstResponses)")
        let routes = report?["routes"] as? [[String: Any]] ?? []
        #expect(routes.allSatisfy { $0["datagrams"] == nil }, "the relay carries TCP only: no UDP loads across it")
    }

    /// The emulated path as a user runs it: both namespaces made, each route's ends on either side (tcptunnel-tls's
    /// cover beside its remote agent), the loads measured across the path (a round trip of at least the 10 ms
    /// asked for), and the namespaces gone after.
    @Test(.enabled(if: geteuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0, "the emulated path needs root"))
    func benchAcrossAnEmulatedPathMeasuresEveryRouteAndRemovesItsNamespaces() throws {
        let json = NSTemporaryDirectory() + "tcptunnel-bench-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: json) }
        let bench = try AgentProcess([
            "bench", "--path", "5ms,50MB/s", "--streams", "1", "--seconds", "0.2", "--peers", "tcptunnel-tls,direct",
            "--responses", "64K", "--response-connections", "1", "--clients", "4", "--datagram-flows", "1",
            "--outages", "1", "--outage-seconds", "10", "--json", json,
        ])
        #expect(bench.waitForExit(seconds: 120) == 0, "bench: \(bench.standardError)")
        #expect(bench.standardError.contains("path: 5 ms each way, 50 MB/s, 256 KiB queue, from network namespace"))

        let report =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
        let routes = report?["routes"] as? [[String: Any]] ?? []
        #expect(routes.compactMap { $0["name"] as? String } == ["tcptunnel", "tcptunnel-tls", "direct"])
        for route in routes {
            let point = (route["points"] as? [[String: Any]])?.first
            #expect((point?["bulk"] as? [String: Any])?["verified"] as? Bool == true)
            let p50 = (point?["requests"] as? [String: Any])?["p50Microseconds"] as? Double ?? 0
            #expect(p50 >= 10_000, "\(route["name"] ?? "?"): p50 \(p50) µs across a 10 ms round trip")
            try expectDatagramLoads(route, flows: [1])
            // Every packet dropped both ways for 10 s: no stream reset, every byte exact.
            try expectOutages(route, count: 1, cause: "path black-holed for 10 s")
        }
        let namespaces = (try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns")) ?? []
        #expect(namespaces.filter { $0.hasPrefix("tcptunnel-\(bench.process.processIdentifier)-") } == [])
    }

    /// Debian's python3 without python3-matplotlib: the bench says so before it starts a route, not after the run.
    @Test func aChartWithoutMatplotlibIsRefusedBeforeTheRun() throws {
        try #require(
            !FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/matplotlib"),
            "this test needs Debian's python3 without python3-matplotlib")
        let chart = NSTemporaryDirectory() + "tcptunnel-chart-\(UUID().uuidString).png"
        let bench = try AgentProcess(
            ["bench", "--peers", "direct", "--seconds", "60", "--chart", chart],
            environment: ["PATH": "/usr/bin:/bin:/usr/sbin:/sbin"])
        #expect(bench.waitForExit(seconds: 30) == 1)
        #expect(bench.standardError.contains("--chart needs matplotlib for python3"))
        #expect(!bench.standardError.contains("direct"), "no route was started")
        #expect(!FileManager.default.fileExists(atPath: chart))
    }

    @Test func unknownPeerIsAUsageError() throws {
        let bench = try AgentProcess(["bench", "--peers", "telnet"])
        #expect(bench.waitForExit() == 64)
        #expect(bench.standardError.contains("unknown peer 'telnet'"))
    }
}
