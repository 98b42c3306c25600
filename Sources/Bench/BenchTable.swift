/// Renders a report as Markdown tables: one per measure, a row per stream count, a column per route,
/// and after each peer's value the ratio tcptunnel ÷ peer.
public enum BenchTable {
    public static func render(_ report: BenchReport) -> String {
        var out = header(report)
        out += "\nRatios in brackets are tcptunnel ÷ that route at the same stream count.\n"
        let measures: [(title: String, value: (PointReport) -> Double?)] = [
            ("Bulk echo, MB/s each way (higher is better; ✗ = data not verified)", { $0.bulk.megabytesPerSecond }),
            ("Request/response, requests/s (higher is better)", { $0.requests.requestsPerSecond }),
            ("Request/response p50 latency, µs (lower is better)", { $0.requests.p50Microseconds }),
            ("Request/response p99 latency, µs (lower is better)", { $0.requests.p99Microseconds }),
            ("New connections/s (higher is better)", { $0.connects.connectionsPerSecond }),
            (
                "First response of a new connection (connect to whole echo) p50, µs (lower is better)",
                { $0.connects.firstResponseP50Microseconds }
            ),
            (
                "First response of a new connection p99, µs (lower is better)",
                { $0.connects.firstResponseP99Microseconds }
            ),
            (
                "Interactive request/response beside as many bulk streams, p50 µs (lower is better)",
                { $0.interactive.requests.p50Microseconds }
            ),
            (
                "Interactive request/response beside as many bulk streams, p99 µs (lower is better)",
                { $0.interactive.requests.p99Microseconds }
            ),
            ("CPU seconds per GB carried, both ends (lower is better)", { $0.cpuSecondsPerGB }),
            ("CPU µs per new connection, both ends (lower is better)", { $0.cpuMicrosecondsPerConnection }),
        ]
        for measure in measures {
            out +=
                "\n### \(measure.title)\n\n"
                + table(report, markUnverified: measure.title.hasPrefix("Bulk"), measure.value)
        }
        let perSide: [(title: String, value: (ProcessUsage) -> Double, format: (Double) -> String)] = [
            (
                "Peak RSS, MiB: local + remote side = total (lower is better)", { Double($0.peakRSSBytes) / 1_048_576 },
                BenchRunner.format
            ),
            ("Peak threads: local + remote side = total", { Double($0.peakThreads) }, { String(Int($0)) }),
        ]
        for measure in perSide {
            out +=
                "\n### \(measure.title)\n\n"
                + table(
                    report, markUnverified: false, { usage($0).map(measure.value) }, format: measure.format,
                    breakdown: { point in
                        guard let local = point.local, let remote = point.remote else { return nil }
                        return "\(measure.format(measure.value(local))) + \(measure.format(measure.value(remote))) = "
                    })
        }
        out += trafficTables(report)
        out += datagramTables(report)
        out += outageTable(report)
        out += "\n### Half-close (client sends 1 MiB, then FIN; is every echoed byte delivered before the end?)\n\n"
        out += "| route | echoed before end | verdict |\n|---|---|---|\n"
        for route in report.routes {
            guard let check = route.halfClose else { continue }
            out +=
                "| \(route.name) | \(check.receivedBeforeEnd) of \(check.sent) | \(check.intact ? "intact" : "DATA LOST") |\n"
        }
        if let hold = report.hold {
            out += "\n### Streams held open through one tcptunnel link\n\n"
            out +=
                "| streams | usable | seconds to open | local RSS MiB | remote RSS MiB | local threads | remote threads |\n"
            out += "|---|---|---|---|---|---|---|\n"
            out += "| \(hold.requested) | \(hold.usable) | \(hold.secondsToOpen.formatted(decimals: 1)) | "
            out +=
                "\(BenchRunner.mebibytes(hold.local?.peakRSSBytes)) | \(BenchRunner.mebibytes(hold.remote?.peakRSSBytes)) | "
            out +=
                "\(hold.local.map { String($0.peakThreads) } ?? "?") | \(hold.remote.map { String($0.peakThreads) } ?? "?") |\n"
            if let failure = hold.firstFailure { out += "\nFirst failure: \(failure)\n" }
        }
        let failures = report.routes.filter { $0.failure != nil }
        if !failures.isEmpty {
            out += "\n### Failures\n\n" + failures.map { "- \($0.name): \($0.failure!)\n" }.joined()
        }
        return out
    }

    private static func header(_ report: BenchReport) -> String {
        let machine = report.machine
        let settings = report.settings
        var path = "loopback"
        if let emulated = settings.path {
            path = "emulated between two network namespaces (kernel TCP at both ends), \(emulated)"
        } else if let rtt = settings.rttMilliseconds {
            path = "\(BenchRunner.format(rtt)) ms RTT"
            if let cap = settings.bandwidthBytesPerSecond {
                path += ", capped at \(BenchRunner.format(cap / 1e6)) MB/s"
            }
        }
        return """
            - Machine: \(machine.cpus) CPUs (\(machine.cpuModel)), \(machine.memoryGiB.formatted(decimals: 0)) GiB, \
            Linux \(machine.kernel), \(machine.build) build, \(machine.date)
            - XChaCha20-Poly1305 framing (tcptunnel's FrameSealer, 32 KiB frames): \
            \(machine.sealMegabytesPerSecond.map { BenchRunner.format($0) } ?? "?") MB/s on one core
            - Loads: \(BenchRunner.format(settings.seconds)) s each, \(settings.messageSize)-byte requests, path: \(path); \
            tcptunnel with \(settings.tcptunnelLinks) link\(settings.tcptunnelLinks == 1 ? "" : "s")

            """
    }

    private static func usage(_ point: PointReport) -> ProcessUsage? {
        switch (point.local, point.remote) {
        case (nil, nil): nil
        case (let one?, nil), (nil, let one?): one
        case (let local?, let remote?):
            ProcessUsage(
                peakRSSBytes: local.peakRSSBytes + remote.peakRSSBytes,
                peakThreads: local.peakThreads + remote.peakThreads, cpuSeconds: local.cpuSeconds + remote.cpuSeconds)
        }
    }

    /// `breakdown`, if given, is written before each value (the per-side parts of a total).
    private static func table(
        _ report: BenchReport, markUnverified: Bool, _ value: (PointReport) -> Double?,
        format: (Double) -> String = BenchRunner.format, breakdown: (PointReport) -> String? = { _ in nil }
    ) -> String {
        let routes = report.routes
        var out = "| streams | " + routes.map(\.name).joined(separator: " | ") + " |\n"
        out += "|---:|" + String(repeating: "---:|", count: routes.count) + "\n"
        for streams in report.settings.streams {
            let ours = routes.first?.points.first { $0.streams == streams }.flatMap(value)
            var cells = ["\(streams)"]
            for (index, route) in routes.enumerated() {
                guard let point = route.points.first(where: { $0.streams == streams }), let number = value(point) else {
                    cells.append("–")
                    continue
                }
                var cell = (breakdown(point) ?? "") + format(number)
                if markUnverified, !point.bulk.verified { cell += " ✗" }
                if index > 0, let ours, number > 0 { cell += " (\((ours / number).formatted(decimals: 2))×)" }
                cells.append(cell)
            }
            out += "| " + cells.joined(separator: " | ") + " |\n"
        }
        return out
    }
}
