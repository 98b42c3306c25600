import Foundation
import Testing

/// `tcptunnel bench` as a user runs it: the real binary starting its own echo target and agents. A short
/// run, so that the benchmark cannot rot between the full runs that docs/BENCHMARKS.md records.
@Suite struct BenchCommandTests {
    @Test func shortBenchRunMeasuresEveryLoadAndWritesJSON() throws {
        let json = NSTemporaryDirectory() + "tcptunnel-bench-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: json) }
        let bench = try AgentProcess([
            "bench", "--streams", "1,3", "--seconds", "0.1", "--peers", "direct", "--hold", "50", "--json", json,
        ])
        #expect(bench.waitForExit(seconds: 60) == 0, "bench: \(bench.standardError)")

        let report =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
        let routes = report?["routes"] as? [[String: Any]] ?? []
        #expect(routes.compactMap { $0["name"] as? String } == ["tcptunnel", "direct"])
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
            }
            #expect((route["halfClose"] as? [String: Any])?["intact"] as? Bool == true)
        }
        let tunnelPoint = (routes.first?["points"] as? [[String: Any]])?.first
        #expect(((tunnelPoint?["local"] as? [String: Any])?["peakThreads"] as? Int ?? 0) > 0)
        let hold = report?["hold"] as? [String: Any]
        #expect(hold?["usable"] as? Int == 50)
    }

    @Test func unknownPeerIsAUsageError() throws {
        let bench = try AgentProcess(["bench", "--peers", "telnet"])
        #expect(bench.waitForExit() == 64)
        #expect(bench.standardError.contains("unknown peer 'telnet'"))
    }
}
