import ArgumentParser
import Bench
import FoundationEssentials
import Glibc
import Mux

/// `tcptunnel bench`: measures this build against stream counts, and against the tunnels users would
/// otherwise pick, all on this machine's loopback.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark tcptunnel (and, with --peers, other tunnels) on 127.0.0.1.",
        discussion: """
            Starts an echo target, then for each route (tcptunnel first, then each peer) and each stream count: starts the route afresh, and runs four loads one after another, each for --seconds: bulk echo (verified byte for byte), small request/response round trips, new connections, and one request/response stream beside bulk streams. Then, on the route started once more, two loads shaped like real traffic: responses of each --responses size on keep-alive connections (a small request, the whole response read and checked), and --clients event-driven clients of small requests, with the context switches and CPU time per request of the route's processes. On the routes that carry UDP (direct, tcptunnel, tcptunnel-tls, ss-tunnel), started once more and not across --rtt's relay: request/response datagrams on each of --datagram-flows flows, a paced stream of 1,200-byte datagrams doubling its rate from 1,250/s while at most 1 % is lost, and datagram round trips beside bulk streams. With --idle-flows, that many UDP flows are held through one tcptunnel link and each agent's memory read before and after. It samples the CPU time, peak RSS and threads of the route's processes. Progress goes to standard error; the table (Markdown) to standard output.

            Peers: tcptunnel-tls (this build with --transport tls, an openssl s_server as its cover), direct (no tunnel), socat, ssh (ssh -L to a private sshd), spiped, ss-tunnel (shadowsocks-libev). Each must be installed; scripts/bench-peers installs them from Debian and runs the full comparison.
            """
    )

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Concurrent stream counts, comma-separated (default: 1,4,16,64,256,1024).", valueName: "n,n,..."),
        transform: parseStreamCounts)
    var streams: [Int] = [1, 4, 16, 64, 256, 1024]

    @Option(name: .long, help: ArgumentHelp("Seconds each load runs at each stream count.", valueName: "seconds"))
    var seconds: Double = 2

    @Option(name: .long, help: ArgumentHelp("Bytes per request and per response.", valueName: "bytes"))
    var messageSize: Int = 64

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Response sizes of the responses load, comma-separated, e.g. 1K,1M, or 'none' (default: 1K,16K,64K,256K,1M).",
            valueName: "sizes"),
        transform: parseResponseSizes)
    var responses: [Int] = [1 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20]

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Keep-alive connection counts of the responses load (default: 1,16).", valueName: "n,n,..."),
        transform: parseStreamCounts)
    var responseConnections: [Int] = [1, 16]

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Client counts of the many-clients load (one event-driven thread drives them all), or 'none' (default: 16,64,256).",
            valueName: "n,n,..."),
        transform: { $0 == "none" ? [] : try parseStreamCounts($0) })
    var clients: [Int] = [16, 64, 256]

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Flow counts of the request/response datagram load on the routes that carry UDP, or 'none' for no UDP loads (default: 1,16).",
            valueName: "n,n,..."),
        transform: { $0 == "none" ? [] : try parseStreamCounts($0) })
    var datagramFlows: [Int] = [1, 16]

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Also break each route's link this many times under 4 bulk streams and an interactive one: its connection killed (ss -K), or across --path the path black-holed for --outage-seconds; reports each pause (default: 0, none).",
            valueName: "n"))
    var outages: Int = 0

    @Option(
        name: .long,
        help: ArgumentHelp("With --path and --outages: seconds each outage drops every packet.", valueName: "seconds"))
    var outageSeconds: Double = 10

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Also hold this many UDP flows idle through one tcptunnel link, and read each agent's memory before and after.",
            valueName: "n"))
    var idleFlows: Int?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Peers to measure after tcptunnel, comma-separated, or 'all' (\(BenchPlan.peerNames.joined(separator: ", "))).",
            valueName: "names"))
    var peers: String = ""

    @Option(
        name: .long,
        help: ArgumentHelp("Use this echo server as the target instead of starting one.", valueName: "host:port"))
    var target: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Put a relay with this round-trip time between each route's two ends, e.g. 100ms.", valueName: "time"),
        transform: parseMilliseconds)
    var rtt: Double?

    @Option(
        name: .long, help: ArgumentHelp("With --rtt: cap that path at this many MB/s each way.", valueName: "MB/s"))
    var bandwidth: Double?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Join each route's two ends by an emulated path with kernel TCP at both ends (needs root): one-way delay, rate, loss, queue, e.g. 25ms,10MB/s,1%,256KiB.",
            valueName: "shape"),
        transform: parsePath)
    var path: EmulatedPathShape?

    @Option(
        name: .long,
        help: ArgumentHelp("Also hold this many streams open at once through one tcptunnel link.", valueName: "n"))
    var hold: Int?

    @Option(
        name: .long, help: ArgumentHelp("Links tcptunnel's local agent keeps (its --links).", valueName: "count"))
    var links: Int = 1

    @Option(
        name: .long, help: ArgumentHelp("Write the results as JSON to this file.", valueName: "file"),
        completion: .file(extensions: ["json"]))
    var json: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Draw the results as a PNG chart (needs python3 with matplotlib).", valueName: "file"),
        completion: .file(extensions: ["png"]))
    var chart: String?

    mutating func validate() throws {
        guard seconds > 0, seconds <= 600 else {
            throw ValidationError("--seconds must be more than 0 and at most 600")
        }
        guard messageSize >= 4, messageSize <= 1 << 20 else {
            throw ValidationError("--message-size must be from 4 bytes to 1 MiB")
        }
        if let target { _ = try Endpoint(parsingDialled: target, option: "--target") }
        guard bandwidth == nil || (rtt != nil && bandwidth! > 0) else {
            throw ValidationError("--bandwidth needs --rtt and must be more than 0")
        }
        if let hold, hold < 1 { throw ValidationError("--hold must be at least 1") }
        guard (0...100).contains(outages) else { throw ValidationError("--outages must be from 0 to 100") }
        guard outageSeconds > 0, outageSeconds <= 600 else {
            throw ValidationError("--outage-seconds must be more than 0 and at most 600")
        }
        if let idleFlows, !(1...100_000).contains(idleFlows) {
            throw ValidationError("--idle-flows must be from 1 to 100000")
        }
        guard (1...LocalCommand.maxLinks).contains(links) else {
            throw ValidationError("--links must be from 1 to \(LocalCommand.maxLinks)")
        }
        if path != nil {
            guard rtt == nil, target == nil else {
                throw ValidationError("--path runs its own target across its own path: not with --rtt or --target")
            }
            if let reason = EmulatedPath.unavailability { throw ValidationError("--path: \(reason)") }
        }
        _ = try peerNames()
    }

    func run() throws {
        try reportingErrors {
            Signals.prepare()
            try startThread(named: "bench-signals") {
                let name = Signals.waitForTermination()
                StandardStreams.error("bench: received \(name); stopping what the run started\n")
                BenchRunner.abandon()
                Glibc.exit(130)
            }
            #if DEBUG
                progress("note: this is a debug build; build with -c release for representative numbers")
            #endif
            if chart != nil { try ChartRenderer.requireMatplotlib() }
            var settings = BenchSettings(
                streams: streams, seconds: seconds, messageSize: messageSize, rttMilliseconds: rtt,
                bandwidthBytesPerSecond: bandwidth.map { $0 * 1e6 }, path: path, tcptunnelLinks: links,
                responseSizes: responses, responseConnections: responseConnections, clientCounts: clients,
                datagramFlows: datagramFlows)
            settings.outages = outages
            settings.outageSeconds = outageSeconds
            let plan = BenchPlan(
                settings: settings,
                peers: try peerNames(),
                target: try target.map { try Endpoint(parsingDialled: $0, option: "--target") },
                hold: hold, idleFlows: idleFlows)
            let report = try BenchRunner.run(plan, progress: progress)
            print(BenchTable.render(report), terminator: "")
            if let json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                let url = URL(fileURLWithPath: json)
                do {
                    try encoder.encode(report).write(to: url)
                } catch {
                    throw ExitMessage("cannot write \(json): \(error)")
                }
                progress("wrote \(json)")
                if let chart {
                    try ChartRenderer.render(json: url, png: URL(fileURLWithPath: chart))
                    progress("wrote \(chart)")
                }
            } else if let chart {
                let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
                    "tcptunnel-bench-\(getpid()).json")
                defer { try? FileManager.default.removeItem(at: scratch) }
                try JSONEncoder().encode(report).write(to: scratch)
                try ChartRenderer.render(json: scratch, png: URL(fileURLWithPath: chart))
                progress("wrote \(chart)")
            }
            let failed = report.routes.contains { $0.failure != nil || $0.points.contains { !$0.bulk.verified } }
            if failed || (report.hold.map { $0.usable < $0.requested } ?? false)
                || (report.idleFlows.map { $0.usable < $0.requested } ?? false)
            {
                throw ExitMessage("some measurements failed; see the table")
            }
        }
    }

    private func progress(_ line: String) {
        StandardStreams.error("bench: \(line)\n")
    }

    private func peerNames() throws -> [String] {
        let names = peers.split(separator: ",").map(\.trimmed)
        if names == ["all"] { return BenchPlan.peerNames }
        for name in names where !BenchPlan.peerNames.contains(name) {
            throw ValidationError(
                "--peers: unknown peer '\(name)' (known: \(BenchPlan.peerNames.joined(separator: ", ")), or all)")
        }
        return names
    }
}

/// Parses `1,4,16`: positive, ascending counts.
private func parseStreamCounts(_ text: String) throws -> [Int] {
    let counts = try text.split(separator: ",").map { part in
        guard let count = Int(part.trimmed), count >= 1, count <= 100_000 else {
            throw ValidationError("'\(part)' is not a stream count from 1 to 100000")
        }
        return count
    }
    guard !counts.isEmpty else { throw ValidationError("give at least one count") }
    return counts
}

/// Parses `1K,64K,1M` (K, M: binary multiples), or `none`: response sizes of the responses load.
private func parseResponseSizes(_ text: String) throws -> [Int] {
    guard text != "none" else { return [] }
    return try text.split(separator: ",").map { part in
        guard let size = ByteCount(argument: part.trimmed)?.bytes, size >= 8, size <= 64 << 20 else {
            throw ValidationError("'\(part)' is not a response size from 8 bytes to 64M")
        }
        return size
    }
}

private func parsePath(_ text: String) throws -> EmulatedPathShape {
    do {
        return try EmulatedPathShape(parsing: text)
    } catch {
        throw ValidationError(error.description)
    }
}

/// Parses `100ms`, `0.1s` or `100` (milliseconds) into milliseconds.
private func parseMilliseconds(_ text: String) throws -> Double {
    let (number, scale): (Substring, Double) =
        text.hasSuffix("ms")
        ? (text.dropLast(2), 1) : text.hasSuffix("s") ? (text.dropLast(1), 1000) : (Substring(text), 1)
    guard let value = Double(number), value >= 0, value <= 10_000 else {
        throw ValidationError("'\(text)' is not a time such as 100ms or 0.1s (at most 10 s)")
    }
    return value * scale
}
