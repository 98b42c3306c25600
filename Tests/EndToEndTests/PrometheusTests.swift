import Foundation
import Testing

@testable import Mux

/// Both agents' `/metrics` as Prometheus reads them: checked by its own `promtool check metrics` (Debian's
/// `prometheus` package) after real traffic and a reload, every family the README lists present with its help.
@Suite struct PrometheusTests {
    static let promtool = "/usr/bin/promtool"

    /// The text at `http://127.0.0.1:port/metrics`.
    private func scrape(_ port: UInt16) throws -> String {
        let answer = try run("/usr/bin/curl", ["-sf", "--max-time", "5", "http://127.0.0.1:\(port)/metrics"])
        #expect(answer.status == 0, "curl: \(answer.errors)")
        return String(decoding: answer.output, as: UTF8.self)
    }

    /// The families of `exposition` that have a `# HELP` and a `# TYPE` line.
    private func describedFamilies(_ exposition: String) -> Set<String> {
        let lines = exposition.split(separator: "\n")
        func named(_ prefix: String) -> Set<String> {
            Set(lines.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count).prefix { $0 != " " }) })
        }
        return named("# HELP ").intersection(named("# TYPE "))
    }

    @Test func bothAgentsMetricsPassPromtoolWithEveryFamilyDescribed() throws {
        try DebianPackages.ensureInstalled("prometheus", providing: Self.promtool)
        let target = try TestTarget.echo()
        defer { target.stop() }
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let (remoteMetrics, localMetrics) = (try freeLoopbackPort(), try freeLoopbackPort())
        let remote = try AgentProcess([
            "remote", "--listen", "127.0.0.1:0", "--target", "\(target.endpoint)", "--key-file", keyFile,
            "--metrics", "127.0.0.1:\(remoteMetrics)",
        ])
        let remotePort = try #require(remote.listeningPort())
        let local = try AgentProcess([
            "local", "--remote", "127.0.0.1:\(remotePort)", "--key-file", keyFile, "--listen", "127.0.0.1:0",
            "--metrics", "127.0.0.1:\(localMetrics)",
        ])
        let port = try #require(local.listeningPort())
        #expect(local.waitForLog("link up"))
        #expect(try echoesExactly(pattern(count: 1 << 20, seed: 3), through: Endpoint(host: "127.0.0.1", port: port)))
        local.send(SIGHUP)
        #expect(local.waitForLog("reloaded"))

        for (agent, port) in [("local", localMetrics), ("remote", remoteMetrics)] {
            let exposition = try scrape(port)
            let check = try run(Self.promtool, ["check", "metrics"], input: Data(exposition.utf8))
            #expect(check.status == 0, "promtool on the \(agent) agent: \(check.errors)")
            // A remote agent has no link slots and no forwards of its own; every other family is there.
            let absent: Set<String> =
                agent == "local" ? [] : [MetricFamily.linkUp.name, MetricFamily.forwardBytes.name]
            let expected = Set(MetricFamily.all.map(\.name)).subtracting(absent)
            #expect(expected.subtracting(describedFamilies(exposition)) == [], "\(agent) agent")
            for family in MetricFamily.all where !absent.contains(family.name) {
                #expect(exposition.contains("# TYPE \(family.name) \(family.kind.rawValue)\n"), "\(family.name)")
            }
        }
        let afterReload = try scrape(localMetrics)
        #expect(afterReload.contains(#"tcptunnel_config_reloads_total{result="applied"} 1"#))
        #expect(afterReload.contains("tcptunnel_config_last_reload_successful 1"))
        #expect(afterReload.contains(#"tcptunnel_stream_bytes_total{direction="to_target"} 1048576"#))
    }

    @Test func theREADMEListsEveryFamily() throws {
        let readme = try String(
            contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
                "../../README.md"), encoding: .utf8)
        let missing = MetricFamily.all.map(\.name).filter { !readme.contains("| `\($0)") }
        #expect(missing == [])
    }
}
