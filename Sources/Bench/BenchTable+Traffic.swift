/// The tables of the loads shaped like real traffic: responses by size, and many event-driven clients.
extension BenchTable {
    static func trafficTables(_ report: BenchReport) -> String {
        var out = ""
        let settings = report.settings
        for connections in settings.responseConnections where !settings.responseSizes.isEmpty {
            let on = "\(connections) keep-alive connection\(connections == 1 ? "" : "s")"
            let measures: [(title: String, value: (ResponseReport) -> Double)] = [
                ("Responses/s on \(on), by response size (higher is better)", \.responsesPerSecond),
                ("Response MB/s on \(on) (higher is better)", \.megabytesPerSecond),
                ("Response time p50 on \(on), µs (lower is better)", \.p50Microseconds),
                ("Response time p99 on \(on), µs (lower is better)", \.p99Microseconds),
            ]
            for measure in measures {
                out +=
                    "\n### \(measure.title)\n\n"
                    + rows(
                        report, header: "response", keys: settings.responseSizes, label: sizeLabel,
                        point: { route, size in
                            route.responses.first { $0.size == size && $0.connections == connections }
                                .flatMap { $0.failedConnections == 0 ? measure.value($0) : nil }
                        })
            }
        }
        guard !settings.clientCounts.isEmpty else { return out }
        let measures: [(title: String, value: (ClientsReport) -> Double?)] = [
            (
                "Many clients, one event-driven load thread: requests/s (\(settings.messageSize)-byte, higher is better)",
                \.requestsPerSecond
            ),
            ("Many clients: p50 µs (lower is better)", \.p50Microseconds),
            ("Many clients: p99 µs (lower is better)", \.p99Microseconds),
            (
                "Many clients: context switches per request, all threads of both ends (lower is better)",
                \.contextSwitchesPerRequest
            ),
            ("Many clients: CPU µs per request, both ends (lower is better)", \.cpuMicrosecondsPerRequest),
        ]
        for measure in measures {
            out +=
                "\n### \(measure.title)\n\n"
                + rows(
                    report, header: "clients", keys: settings.clientCounts, label: { String($0) },
                    point: { route, clients in
                        route.manyClients.first { $0.clients == clients }
                            .flatMap { $0.failure == nil ? measure.value($0) : nil }
                    })
        }
        return out
    }

    /// A table with a row per key and a column per route, and after each peer's value tcptunnel ÷ that value.
    static func rows(
        _ report: BenchReport, header: String, keys: [Int], label: (Int) -> String,
        point: (RouteReport, Int) -> Double?
    ) -> String {
        let routes = report.routes
        var out = "| \(header) | " + routes.map(\.name).joined(separator: " | ") + " |\n"
        out += "|---:|" + String(repeating: "---:|", count: routes.count) + "\n"
        for key in keys {
            let ours = routes.first.flatMap { point($0, key) }
            var cells = [label(key)]
            for (index, route) in routes.enumerated() {
                guard let number = point(route, key) else {
                    cells.append("–")
                    continue
                }
                var cell = BenchRunner.format(number)
                if index > 0, let ours, number > 0 { cell += " (\((ours / number).formatted(decimals: 2))×)" }
                cells.append(cell)
            }
            out += "| " + cells.joined(separator: " | ") + " |\n"
        }
        return out
    }

    /// 1024 → "1 KiB", 1048576 → "1 MiB".
    static func sizeLabel(_ bytes: Int) -> String {
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) B"
    }
}
