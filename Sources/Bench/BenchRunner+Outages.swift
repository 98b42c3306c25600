import Mux

extension BenchRunner {
    /// The outage load (`--outages`), on the route started once more, for a route with a link: bulk streams and an
    /// interactive one while its connection is killed, or, across the emulated path, while the path drops
    /// everything for `--outage-seconds`.
    static func measureOutages(
        _ route: any Route, into report: inout RouteReport, target: Endpoint, plan: BenchPlan, path: LongPath?,
        context: RouteContext, pattern: TestPattern, progress: (String) -> Void
    ) throws(BenchError) {
        let settings = plan.settings
        guard settings.outages > 0 else { return }
        let running = try route.start(target: target, path: path, context: context)
        defer { running.stop() }
        guard let link = running.link else { return }
        let cause: OutageLoad.Cause =
            if case .emulated(let emulated) = path {
                .blackhole(emulated, seconds: settings.outageSeconds)
            } else {
                .kill(link: link, scratch: context.scratch)
            }
        progress("\(route.name): \(settings.outages) outages (\(cause)) under 4 bulk streams: starting")
        let outages = try OutageLoad.run(
            entry: running.entry, cause: cause, outages: settings.outages, bulkStreams: 4,
            seconds: max(settings.seconds, 1), messageSize: settings.messageSize, pattern: pattern)
        report.outages = outages
        let pauses = outages.pausesMilliseconds.map { $0.map { "\(format($0)) ms" } ?? "never resumed" }
        progress(
            "\(route.name): \(cause) ×\(outages.outages): \(outages.survived ? "every stream went on" : "streams lost (\(outages.interactiveFailure ?? outages.bulk.firstFailure ?? "?"))"); pauses \(pauses.joined(separator: ", "))"
        )
    }
}
