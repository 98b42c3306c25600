/// The tables of the UDP loads: datagram round trips by flow count, the paced stream's loss by rate, datagrams
/// beside bulk streams, and idle flows.
extension BenchTable {
    static func datagramTables(_ report: BenchReport) -> String {
        let settings = report.settings
        guard !settings.datagramFlows.isEmpty, report.routes.contains(where: { $0.datagrams != nil }) else {
            return idleFlowsTable(report)
        }
        var out = ""
        let measures: [(title: String, value: (DatagramRequestReport) -> Double)] = [
            (
                "UDP: \(settings.messageSize)-byte datagram round trips/s by flow count (higher is better)",
                \.requestsPerSecond
            ),
            ("UDP: datagram round trip p50, µs (lower is better)", \.p50Microseconds),
            ("UDP: datagram round trip p99, µs (lower is better)", \.p99Microseconds),
            ("UDP: datagrams lost (echo not back within 0.5 s)", { Double($0.lost) }),
        ]
        for measure in measures {
            out +=
                "\n### \(measure.title)\n\n"
                + rows(
                    report, header: "flows", keys: settings.datagramFlows, label: { String($0) },
                    point: { route, flows in route.datagrams?.requests.first { $0.flows == flows }.map(measure.value) })
        }
        let rates = Array(Set(report.routes.flatMap { $0.datagrams?.stream.map { Int($0.offeredPerSecond) } ?? [] }))
            .sorted()
        out +=
            "\n### UDP: paced stream of \(DatagramStreamLoad.size)-byte datagrams, % lost by offered rate (lower is better)\n\n"
            + rows(
                report, header: "datagrams/s", keys: rates, label: { String($0) },
                point: { route, rate in
                    route.datagrams?.stream.first { Int($0.offeredPerSecond) == rate }.map(\.lossPercent)
                })
        out +=
            "\n### UDP: highest rate with at most 1 % lost, datagrams/s (higher is better)\n\n"
            + rows(
                report, header: "size", keys: [DatagramStreamLoad.size], label: sizeLabel,
                point: { route, _ in route.datagrams?.bestRateAtOnePercentLoss })
        let bulk = BenchRunner.besideBulkStreams(settings)
        let beside: [(title: String, value: (DatagramRequestReport) -> Double)] = [
            ("UDP: datagram round trip beside \(bulk) bulk stream\(bulk == 1 ? "" : "s"), p50 µs", \.p50Microseconds),
            ("UDP: datagram round trip beside \(bulk) bulk stream\(bulk == 1 ? "" : "s"), p99 µs", \.p99Microseconds),
        ]
        for measure in beside {
            out +=
                "\n### \(measure.title) (lower is better)\n\n"
                + rows(
                    report, header: "bulk streams", keys: [bulk], label: { String($0) },
                    point: { route, _ in route.datagrams?.besideBulk.map { measure.value($0.requests) } })
        }
        out += "\n### UDP: a datagram of each size sent once, echoed whole?\n\n"
        out += "| route | " + DatagramSizeCheck.sizes.map { "\($0) bytes" }.joined(separator: " | ") + " |\n"
        out += "|---|" + String(repeating: "---|", count: DatagramSizeCheck.sizes.count) + "\n"
        for route in report.routes {
            guard let checks = route.datagrams?.wholeDatagrams, !checks.isEmpty else { continue }
            out += "| \(route.name) | " + checks.map { $0.intact ? "whole" : "LOST" }.joined(separator: " | ") + " |\n"
        }
        return out + idleFlowsTable(report)
    }

    private static func idleFlowsTable(_ report: BenchReport) -> String {
        guard let flows = report.idleFlows else { return "" }
        let growth = { (before: Int, after: Int) in BenchRunner.mebibytes(after - before) }
        var out = "\n### UDP flows held idle through one tcptunnel link\n\n"
        out += "| flows | usable | local RSS MiB (before → after, growth) | remote RSS MiB (before → after, growth) |\n"
        out += "|---|---|---|---|\n"
        out += "| \(flows.requested) | \(flows.usable) | "
        out +=
            "\(BenchRunner.mebibytes(flows.localBefore)) → \(BenchRunner.mebibytes(flows.localAfter)), +\(growth(flows.localBefore, flows.localAfter)) | "
        out +=
            "\(BenchRunner.mebibytes(flows.remoteBefore)) → \(BenchRunner.mebibytes(flows.remoteAfter)), +\(growth(flows.remoteBefore, flows.remoteAfter)) |\n"
        if let failure = flows.firstFailure { out += "\nFirst failure: \(failure)\n" }
        return out
    }
}
