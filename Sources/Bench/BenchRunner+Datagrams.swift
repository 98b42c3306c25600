import Glibc
import Mux

/// The UDP loads: on each route that carries UDP, request/response datagrams, a paced stream and datagrams beside
/// bulk streams; and idle flows held through one tcptunnel link.
extension BenchRunner {
    /// Runs the UDP loads on `route` started once more. A relay path (`--rtt`) carries TCP only, so there are
    /// none then.
    static func measureDatagrams(
        _ route: any Route, into report: inout RouteReport, target: Endpoint, plan: BenchPlan, path: LongPath?,
        context: RouteContext, pattern: TestPattern, progress: (String) -> Void
    ) throws(BenchError) {
        let settings = plan.settings
        guard route.carriesDatagrams, !settings.datagramFlows.isEmpty else { return }
        if case .relay = path { return }
        progress("\(route.name): datagrams: starting")
        let running = try route.start(target: target, path: path, context: context)
        defer { running.stop() }
        var datagrams = DatagramsReport()
        datagrams.wholeDatagrams = try DatagramSizeCheck.run(entry: running.entry, pattern: pattern)
        progress(
            "\(route.name): datagrams of \(datagrams.wholeDatagrams.map { "\($0.size) bytes \($0.intact ? "whole" : "LOST")" }.joined(separator: ", "))"
        )
        for flows in settings.datagramFlows {
            let requests = try DatagramRequestLoad.run(
                entry: running.entry, flows: flows, seconds: settings.seconds, size: settings.messageSize)
            datagrams.requests.append(requests)
            progress(
                "\(route.name): \(flows) UDP flow\(flows == 1 ? "" : "s"): \(format(requests.requestsPerSecond)) datagram round trips/s, p50 \(format(requests.p50Microseconds)) µs, p99 \(format(requests.p99Microseconds)) µs, \(requests.lost) lost"
            )
        }
        datagrams.stream = try DatagramStreamLoad.run(entry: running.entry, stepSeconds: settings.seconds / 2)
        for step in datagrams.stream {
            progress(
                "\(route.name): UDP stream of \(step.size)-byte datagrams at \(format(step.offeredPerSecond))/s: \(format(step.lossPercent))% lost"
            )
        }
        let bulkStreams = besideBulkStreams(settings)
        datagrams.besideBulk = try besideBulk(
            entry: running.entry, bulkStreams: bulkStreams, seconds: settings.seconds, size: settings.messageSize,
            pattern: pattern)
        if let beside = datagrams.besideBulk {
            progress(
                "\(route.name): datagram round trips beside \(bulkStreams) bulk: p50 \(format(beside.requests.p50Microseconds)) µs, p99 \(format(beside.requests.p99Microseconds)) µs, \(beside.requests.lost) lost (bulk \(format(beside.bulkMegabytesPerSecond)) MB/s)"
            )
        }
        report.datagrams = datagrams
    }

    /// The bulk streams datagrams are measured beside: four, as the interactive stream's goal is set (issue 30),
    /// or the largest stream count if the run has none as large.
    static func besideBulkStreams(_ settings: BenchSettings) -> Int {
        min(4, settings.streams.max() ?? 1)
    }

    /// Datagram round trips on one flow while `bulkStreams` bulk echo streams fill the route, timed as
    /// `InteractiveLoad` times a TCP stream's.
    private static func besideBulk(
        entry: Endpoint, bulkStreams: Int, seconds: Double, size: Int, pattern: TestPattern
    ) throws(BenchError) -> DatagramBesideBulkReport {
        let (requests, bulk) = try InteractiveLoad.besideBulk(
            entry: entry, bulkStreams: bulkStreams, seconds: seconds, pattern: pattern
        ) { (measuredSeconds) throws(BenchError) in
            try DatagramRequestLoad.run(entry: entry, flows: 1, seconds: measuredSeconds, size: size)
        }
        return DatagramBesideBulkReport(
            bulkStreams: bulkStreams, requests: requests, bulkMegabytesPerSecond: bulk.megabytesPerSecond)
    }

    /// Opens `count` UDP flows through one tcptunnel link and reads each agent's memory before and after.
    static func holdIdleFlows(
        _ count: Int, target: Endpoint, context: RouteContext, progress: (String) -> Void
    ) -> IdleFlowsReport {
        do {
            progress("idle flows: opening \(count) UDP flows through one tcptunnel link")
            let running = try Routes.tcptunnel.start(target: target, path: nil, context: context)
            defer { running.stop() }
            guard let local = running.local, let remote = running.remote else {
                throw BenchError("tcptunnel started no agent processes")
            }
            let report = IdleFlowsLoad.run(
                entry: running.entry, count: count, local: ProcessProbe(root: local.pid),
                remote: ProcessProbe(root: remote.pid))
            progress(
                "idle flows: \(report.usable) of \(count) usable; RSS local \(mebibytes(report.localBefore)) → \(mebibytes(report.localAfter)) MiB, remote \(mebibytes(report.remoteBefore)) → \(mebibytes(report.remoteAfter)) MiB"
            )
            return report
        } catch {
            progress("idle flows: FAILED: \(error)")
            return IdleFlowsReport(
                requested: count, usable: 0, localBefore: 0, localAfter: 0, remoteBefore: 0, remoteAfter: 0,
                firstFailure: "\(error)")
        }
    }
}
