import FoundationEssentials
import Glibc
import Mux

/// What to measure: the loads' settings, which routes besides tcptunnel, and where the target is.
public struct BenchPlan: Sendable {
    public var settings: BenchSettings
    /// Peer routes to run after tcptunnel, by name (see `BenchPlan.peerNames`).
    public var peers: [String]
    /// An echo server to use instead of starting one.
    public var target: Endpoint?
    /// Streams to hold open at once through one tcptunnel link, or nil to skip that check.
    public var hold: Int?
    /// UDP flows to hold idle through one tcptunnel link, or nil to skip that check.
    public var idleFlows: Int?

    public init(settings: BenchSettings, peers: [String], target: Endpoint?, hold: Int?, idleFlows: Int? = nil) {
        self.settings = settings
        self.peers = peers
        self.target = target
        self.hold = hold
        self.idleFlows = idleFlows
    }

    /// The names `peers` accepts, in the order they run.
    public static let peerNames = Routes.peerOrder
}

/// Runs a plan: starts the target, then for each route and stream count starts the route afresh,
/// runs the loads one after another and measures the route's processes.
public enum BenchRunner {
    /// Runs `plan`, reporting each step through `progress`, and returns everything measured. A route
    /// that fails is recorded with its failure and the run goes on; only problems with the plan itself throw.
    public static func run(_ plan: BenchPlan, progress: @escaping (String) -> Void) throws(BenchError) -> BenchReport {
        let peers = try plan.peers.map { name throws(BenchError) -> any Route in
            guard let route = Routes.peers[name] else {
                throw BenchError("unknown peer '\(name)' (known: \(Routes.peerOrder.joined(separator: ", ")))")
            }
            return route
        }
        for route in peers { try route.checkInstalled() }
        let settings = plan.settings
        let maxStreams =
            (settings.streams + settings.responseConnections + settings.clientCounts + settings.datagramFlows
            + [plan.hold ?? 0, plan.idleFlows ?? 0])
            .max() ?? 1
        try SystemLimits.prepare(forStreams: maxStreams, holding: plan.hold != nil)
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let context = RouteContext(
            scratch: scratch, maxStreams: maxStreams,
            maxFlows: max(plan.idleFlows ?? 0, settings.datagramFlows.max() ?? 0),
            tcptunnelLinks: plan.settings.tcptunnelLinks)
        guard let shape = plan.settings.path else {
            let relay = plan.settings.rttMilliseconds.map {
                LongPath.relay(
                    PathShape(roundTripSeconds: $0 / 1000, bytesPerSecond: plan.settings.bandwidthBytesPerSecond))
            }
            return try measureAll(plan, peers: peers, path: relay, context: context, progress: progress)
        }
        let emulated = try EmulatedPath(shape: shape, scratch: scratch)
        defer { emulated.stop() }
        progress("path: \(shape), from network namespace \(emulated.client.name) to \(emulated.server.name)")
        // Every load thread and client-side process must start in the client namespace, so the whole run
        // moves to a thread there; this thread waits for it, so `progress` is still called by one at a time.
        let reporter = ProgressReporter(progress)
        return try emulated.client.run { () throws(BenchError) in
            try measureAll(plan, peers: peers, path: .emulated(emulated), context: context, progress: reporter.report)
        }
    }

    /// Starts the echo target where `path` puts servers, then measures each route and the hold.
    private static func measureAll(
        _ plan: BenchPlan, peers: [any Route], path: LongPath?, context: RouteContext,
        progress: @escaping (String) -> Void
    ) throws(BenchError) -> BenchReport {
        var targetProcess: ChildProcess?
        defer { targetProcess?.stop() }
        let target: Endpoint
        if let attached = plan.target {
            target = attached
            do {
                try RunningRoute(entry: target, local: nil, remote: nil, relay: nil).waitUntilServing(seconds: 5)
            } catch {
                throw BenchError(
                    "the target \(target) does not echo (it must be an echo server such as tcptunnel bench-target): \(error)"
                )
            }
        } else {
            // Beside the routes' server halves: across an emulated path, in its server namespace.
            let placement = try ServerPlacement.across(path)
            target = placement.listen
            let process = try ChildProcess(
                "echo target", executable: ChildProcess.ownExecutable,
                arguments: ["bench-target", "--listen", target.description], scratch: context.scratch,
                namespace: placement.namespace)
            targetProcess = process
            try RunningRoute(entry: target, local: process, remote: nil, relay: nil).waitUntilServing()
        }
        progress("target: echo server at \(target)")

        let pattern = TestPattern()
        var report = BenchReport(machine: .current(), settings: plan.settings)
        for route in [Routes.tcptunnel] + peers {
            report.routes.append(
                measure(
                    route, target: target, plan: plan, path: path, context: context, pattern: pattern,
                    progress: progress))
        }
        if let hold = plan.hold {
            report.hold = holdStreams(hold, target: target, context: context, progress: progress)
        }
        if let flows = plan.idleFlows {
            report.idleFlows = holdIdleFlows(flows, target: target, context: context, progress: progress)
        }
        return report
    }

    private static func measure(
        _ route: any Route, target: Endpoint, plan: BenchPlan, path: LongPath?, context: RouteContext,
        pattern: TestPattern, progress: (String) -> Void
    ) -> RouteReport {
        var report = RouteReport(name: route.name, detail: route.detail)
        let seconds = plan.settings.seconds
        do {
            for streams in plan.settings.streams {
                progress("\(route.name): \(streams) stream\(streams == 1 ? "" : "s"): starting")
                let running = try route.start(target: target, path: path, context: context)
                defer { running.stop() }
                if report.halfClose == nil {
                    report.halfClose = try HalfCloseCheck.run(entry: running.entry, pattern: pattern)
                }
                let local = running.local.map { ProcessProbe(root: $0.pid) }
                let remote = running.remote.map { ProcessProbe(root: $0.pid) }
                // CPU seconds both sides have used so far.
                func cpuUsed() -> Double { (local?.cpuSeconds ?? 0) + (remote?.cpuSeconds ?? 0) }
                let cpuBefore = cpuUsed()
                let bulk = try BulkLoad.run(entry: running.entry, streams: streams, seconds: seconds, pattern: pattern)
                let cpuBulk = cpuUsed() - cpuBefore
                progress(
                    "\(route.name): \(streams) streams: bulk \(format(bulk.megabytesPerSecond)) MB/s each way\(bulk.verified ? "" : " (NOT VERIFIED: \(bulk.firstFailure ?? "?"))")"
                )
                let requests = try RequestLoad.run(
                    entry: running.entry, streams: streams, seconds: seconds, messageSize: plan.settings.messageSize)
                progress(
                    "\(route.name): \(streams) streams: \(format(requests.requestsPerSecond)) requests/s, p50 \(format(requests.p50Microseconds)) µs, p99 \(format(requests.p99Microseconds)) µs"
                )
                let cpuBeforeConnects = cpuUsed()
                let connects = try ConnectLoad.run(
                    entry: running.entry, streams: streams, seconds: seconds, messageSize: plan.settings.messageSize)
                let cpuConnects = cpuUsed() - cpuBeforeConnects
                progress(
                    "\(route.name): \(streams) streams: \(format(connects.connectionsPerSecond)) new connections/s, first response p50 \(format(connects.firstResponseP50Microseconds)) µs, p99 \(format(connects.firstResponseP99Microseconds)) µs"
                )
                let interactive = try InteractiveLoad.run(
                    entry: running.entry, bulkStreams: streams, seconds: seconds,
                    messageSize: plan.settings.messageSize, pattern: pattern)
                progress(
                    "\(route.name): \(streams) streams: interactive beside \(streams) bulk: p50 \(format(interactive.requests.p50Microseconds)) µs, p99 \(format(interactive.requests.p99Microseconds)) µs (bulk \(format(interactive.bulk.megabytesPerSecond)) MB/s)"
                )
                let gigabytes = Double(bulk.bytes * 2) / 1e9
                report.points.append(
                    PointReport(
                        streams: streams, bulk: bulk, requests: requests, connects: connects, interactive: interactive,
                        cpuSecondsPerGB: running.local == nil || gigabytes == 0 ? nil : cpuBulk / gigabytes,
                        cpuMicrosecondsPerConnection: running.local == nil || connects.count == 0
                            ? nil : cpuConnects / Double(connects.count) * 1e6,
                        local: local?.finish(),
                        remote: remote?.finish()))
            }
            try measureTraffic(
                route, into: &report, target: target, plan: plan, path: path, context: context, pattern: pattern,
                progress: progress)
            try measureDatagrams(
                route, into: &report, target: target, plan: plan, path: path, context: context, pattern: pattern,
                progress: progress)
            try measureOutages(
                route, into: &report, target: target, plan: plan, path: path, context: context, pattern: pattern,
                progress: progress)
        } catch {
            report.failure = error.description
            progress("\(route.name): FAILED: \(error)")
        }
        return report
    }

    /// The loads shaped like real traffic, on the route started once more: responses of each size on keep-alive
    /// connections, then many event-driven clients of small requests.
    private static func measureTraffic(
        _ route: any Route, into report: inout RouteReport, target: Endpoint, plan: BenchPlan, path: LongPath?,
        context: RouteContext, pattern: TestPattern, progress: (String) -> Void
    ) throws(BenchError) {
        let settings = plan.settings
        guard !settings.responseSizes.isEmpty || !settings.clientCounts.isEmpty else { return }
        progress("\(route.name): responses and many clients: starting")
        let running = try route.start(target: target, path: path, context: context)
        defer { running.stop() }
        for connections in settings.responseConnections {
            for size in settings.responseSizes {
                let responses = try ResponseLoad.run(
                    entry: running.entry, connections: connections, size: size, seconds: settings.seconds,
                    pattern: pattern)
                report.responses.append(responses)
                progress(
                    "\(route.name): \(connections) connection\(connections == 1 ? "" : "s"), \(size)-byte responses: \(format(responses.responsesPerSecond))/s, p50 \(format(responses.p50Microseconds)) µs, p99 \(format(responses.p99Microseconds)) µs\(responses.firstFailure.map { " (FAILED: \($0))" } ?? "")"
                )
            }
        }
        let processes = [running.local, running.remote].compactMap { $0.map { ProcessProbe(root: $0.pid) } }
        defer { for probe in processes { _ = probe.finish() } }
        let usage = { processes.isEmpty ? nil : processes.map(\.reading) }
        for clients in settings.clientCounts {
            let load = try ManyClientsLoad.run(
                entry: running.entry, clients: clients, seconds: settings.seconds, messageSize: settings.messageSize,
                usage: usage)
            report.manyClients.append(load)
            progress(
                "\(route.name): \(clients) clients: \(format(load.requestsPerSecond)) requests/s, p50 \(format(load.p50Microseconds)) µs, p99 \(format(load.p99Microseconds)) µs, \(load.contextSwitchesPerRequest.map { format($0) } ?? "–") context switches and \(load.cpuMicrosecondsPerRequest.map { format($0) } ?? "–") CPU µs per request\(load.failure.map { " (FAILED: \($0))" } ?? "")"
            )
        }
    }

    private static func holdStreams(
        _ count: Int, target: Endpoint, context: RouteContext, progress: (String) -> Void
    ) -> HoldReport {
        var report = HoldReport(requested: count, usable: 0, secondsToOpen: 0)
        do {
            progress("hold: opening \(count) streams through one tcptunnel link")
            let running = try Routes.tcptunnel.start(target: target, path: nil, context: context)
            defer { running.stop() }
            let local = running.local.map { ProcessProbe(root: $0.pid) }
            let remote = running.remote.map { ProcessProbe(root: $0.pid) }
            let outcome = HoldLoad.run(
                entry: running.entry, count: count, progress: { progress("hold: \($0)") },
                whileAllOpen: { sleep(seconds: 0.5) })  // let the probes sample the settled state
            report.usable = outcome.usable
            report.secondsToOpen = outcome.secondsToOpen
            report.firstFailure = outcome.firstFailure
            report.local = local?.finish()
            report.remote = remote?.finish()
            progress(
                "hold: \(outcome.usable) of \(count) streams usable; peak RSS local \(mebibytes(report.local?.peakRSSBytes)) MiB, remote \(mebibytes(report.remote?.peakRSSBytes)) MiB"
            )
        } catch {
            report.firstFailure = error.description
            progress("hold: FAILED: \(error)")
        }
        return report
    }

    /// Stops everything a run in this process started and removes its scratch directory: for SIGINT or
    /// SIGTERM in the middle of a run. The process should exit right after.
    public static func abandon() {
        ChildProcess.terminateAll()
        EmulatedPath.stopAll()
        try? FileManager.default.removeItem(at: scratchDirectory)
    }

    private static var scratchDirectory: URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tcptunnel-bench-\(getpid())")
    }

    private static func makeScratchDirectory() throws(BenchError) -> URL {
        let url = scratchDirectory
        do {
            try FileManager.default.createDirectory(
                at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw BenchError("cannot create the scratch directory \(url.path): \(error)")
        }
        return url
    }

    static func format(_ value: Double) -> String {
        value >= 100 ? String(Int(value.rounded())) : value.formatted(decimals: 1)
    }

    static func mebibytes(_ bytes: Int?) -> String {
        bytes.map { (Double($0) / 1_048_576).formatted(decimals: 0) } ?? "?"
    }
}

/// Hands a progress line to the closure the caller gave, from the one thread that runs the benchmark.
/// `@unchecked Sendable`: the caller's thread waits while the run's thread reports, so the closure is never
/// called from two threads at once.
private final class ProgressReporter: @unchecked Sendable {
    private let progress: (String) -> Void

    init(_ progress: @escaping (String) -> Void) {
        self.progress = progress
    }

    func report(_ line: String) { progress(line) }
}
