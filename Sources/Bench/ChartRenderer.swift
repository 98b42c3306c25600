import FoundationEssentials
import Glibc

/// Draws a report as a PNG: throughput, request rate, p99 latency and connection rate against the
/// stream count, responses/s against the response size and requests/s against the client count, one line per
/// route. matplotlib does the drawing, through the system's python3.
public enum ChartRenderer {
    /// Checks that python3 and matplotlib are there, so that a run of many minutes does not end without its
    /// chart: throws what to install if not.
    public static func requireMatplotlib() throws(BenchError) {
        try runPython(["-c", "import matplotlib"], seconds: 30)
    }

    /// Writes the chart of the JSON report at `json` to `png`.
    public static func render(json: URL, png: URL) throws(BenchError) {
        try runPython(["-c", script, json.path, png.path], seconds: 120)
    }

    /// Runs python3 with `arguments` for at most `seconds`; throws what went wrong, in words.
    private static func runPython(_ arguments: [String], seconds: Double) throws(BenchError) {
        let python: ChildProcess
        do {
            python = try ChildProcess(
                "chart-\(getpid())", executable: "python3", arguments: arguments,
                scratch: FileManager.default.temporaryDirectory)
        } catch {
            throw BenchError("--chart needs python3: \(error)")
        }
        defer { try? FileManager.default.removeItem(at: python.log) }
        guard python.waitUntilExit(seconds: seconds) else {
            python.stop()
            let lines = python.lastLogLines
            if lines.contains(where: { $0.contains("No module named 'matplotlib'") }) {
                throw BenchError(
                    "--chart needs matplotlib for python3 (pip install matplotlib, or apt-get install python3-matplotlib)"
                )
            }
            let last = lines.last.map { $0.trimmed } ?? "python3 failed"
            throw BenchError("cannot draw the chart: \(last)")
        }
    }

    private static let script = """
        import json, sys
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        report = json.load(open(sys.argv[1]))
        panels = [
            ("Bulk echo, MB/s each way", lambda p: p["bulk"]["megabytesPerSecond"], "log"),
            ("Requests/s (%d-byte messages)" % report["settings"]["messageSize"], lambda p: p["requests"]["requestsPerSecond"], "log"),
            ("Request p99 latency, µs", lambda p: p["requests"]["p99Microseconds"], "log"),
            ("New connections/s", lambda p: p["connects"]["connectionsPerSecond"], "log"),
        ]
        figure, axes = plt.subplots(2, 3, figsize=(18, 8))
        for axis, (title, value, scale) in zip(axes.flat[:4], panels):
            for route in report["routes"]:
                points = route["points"]
                if not points:
                    continue
                style = dict(linewidth=2.5) if route["name"] == "tcptunnel" else dict(linewidth=1.2)
                axis.plot([p["streams"] for p in points], [value(p) for p in points], marker="o", label=route["name"], **style)
            axis.set_title(title)
            axis.set_xscale("log", base=2)
            axis.set_yscale(scale)
            axis.set_xlabel("concurrent streams")
            axis.grid(True, which="both", alpha=0.3)
        # The loads shaped like real traffic: their own x axes.
        connections = min(report["settings"].get("responseConnections") or [1])
        traffic = [
            (axes.flat[4], "Responses/s on %d keep-alive connection%s" % (connections, "" if connections == 1 else "s"),
             "response size, bytes",
             lambda route: [(r["size"], r["responsesPerSecond"]) for r in route.get("responses", [])
                            if r["connections"] == connections and r["failedConnections"] == 0]),
            (axes.flat[5], "Many clients (one event-driven load thread), requests/s", "concurrent clients",
             lambda route: [(c["clients"], c["requestsPerSecond"]) for c in route.get("manyClients", [])
                            if c.get("failure") is None]),
        ]
        for axis, title, label, values in traffic:
            for route in report["routes"]:
                points = values(route)
                if not points:
                    continue
                style = dict(linewidth=2.5) if route["name"] == "tcptunnel" else dict(linewidth=1.2)
                axis.plot([x for x, _ in points], [y for _, y in points], marker="o", label=route["name"], **style)
            axis.set_title(title)
            axis.set_xscale("log", base=2)
            axis.set_yscale("log")
            axis.set_xlabel(label)
            axis.grid(True, which="both", alpha=0.3)
        axes.flat[0].legend()
        settings = report["settings"]
        path = "loopback" if settings.get("rttMilliseconds") is None else "%g ms RTT" % settings["rttMilliseconds"]
        machine = report["machine"]
        figure.suptitle("tcptunnel bench — %s, %d CPUs, %s build, %s" % (path, machine["cpus"], machine["build"], machine["date"][:10]))
        figure.tight_layout()
        figure.savefig(sys.argv[2], dpi=100)
        """
}
