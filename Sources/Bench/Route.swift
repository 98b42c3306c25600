import FoundationEssentials
import Mux

/// A way for the load generator's clients to reach the target: directly, through tcptunnel, or
/// through one of the tunnels a user would otherwise pick.
protocol Route: Sendable {
    /// Short name for tables, e.g. `ssh -L`.
    var name: String { get }
    /// What exactly runs, e.g. the cipher.
    var detail: String { get }
    /// Programs the route runs, each with the Debian package that provides it.
    var requirements: [(program: String, package: String)] { get }
    /// Starts the route for `target` (the long path, if any, between its two ends) and waits until a
    /// client's bytes come back through it.
    func start(target: Endpoint, path: LongPath?, context: RouteContext) throws(BenchError) -> RunningRoute
    /// Whether the route also carries UDP datagrams, from the same port number as its TCP entry to the target's
    /// (which echoes them).
    var carriesDatagrams: Bool { get }
}

extension Route {
    var carriesDatagrams: Bool { false }

    /// Throws naming the first required program that is not installed, and its Debian package.
    func checkInstalled() throws(BenchError) {
        for (program, package) in requirements {
            do {
                _ = try ChildProcess.locate(program)
            } catch {
                throw BenchError(
                    "\(name) needs \(program), which is not installed (Debian: apt-get install \(package))")
            }
        }
    }
}

/// What every route's start needs besides the target.
struct RouteContext: Sendable {
    /// A directory for keys, configuration and logs, removed after the run.
    let scratch: URL
    /// The most concurrent streams any load will open.
    let maxStreams: Int
    /// The most UDP flows any load will hold at once.
    let maxFlows: Int
    /// The links tcptunnel's local agent keeps (`--links`).
    let tcptunnelLinks: Int
}

/// A started route: where clients connect, and the processes on each side to measure and stop.
final class RunningRoute: Sendable {
    let entry: Endpoint
    /// Where the client side's process connects to carry the route (the server's address, or the long path's
    /// relay), for a route of two ends; `nil` for one that has none.
    let link: Endpoint?
    /// The process(es) next to the clients, and next to the target.
    let local: ChildProcess?
    let remote: ChildProcess?
    /// A process the server needs beside it, off the data path and not measured (tcptunnel-tls's cover).
    private let companion: ChildProcess?
    private let relay: LatencyRelay?

    init(
        entry: Endpoint, link: Endpoint? = nil, local: ChildProcess?, remote: ChildProcess?,
        companion: ChildProcess? = nil, relay: LatencyRelay?
    ) {
        self.entry = entry
        self.link = link
        self.local = local
        self.remote = remote
        self.companion = companion
        self.relay = relay
    }

    /// Stops the route's processes and relay.
    func stop() {
        local?.stop()
        remote?.stop()
        companion?.stop()
        relay?.stop()
    }

    /// Waits until one byte makes the round trip through `entry`, or fails naming the process that died.
    func waitUntilServing(seconds: Double = 20) throws(BenchError) {
        let deadline = ContinuousClock.now + .seconds(seconds)
        var lastError = "no answer"
        while ContinuousClock.now < deadline {
            for process in [local, remote].compactMap({ $0 }) where !process.isRunning {
                stop()
                throw BenchError("\(process.name) exited: \(process.logTail)")
            }
            do {
                let connection = try LoadConnection.open(to: entry, timeout: 2)
                defer { connection.close() }
                connection.socket.setReceiveTimeout(seconds: 2)
                var byte: [UInt8] = [1]
                try connection.socket.sendAll(byte)
                if byte.withUnsafeMutableBytes({ connection.receiveExactly($0) }) { return }
                lastError = "connection closed without an echo"
            } catch {
                lastError = "\(error)"
            }
            sleep(seconds: 0.1)
        }
        let logs = [local, remote].compactMap { $0 }.map { "\($0.name): \($0.logTail)" }
        stop()
        throw BenchError(
            "no echo through \(entry) within \(Int(seconds)) s (\(lastError))"
                + (logs.isEmpty ? "" : "; " + logs.joined(separator: "; ")))
    }

    /// Starts a tunnel with two ends: `server` where `path` puts it (a free loopback port, or the far
    /// namespace of an emulated path), after its `companion` if it has one (listening on the placement's
    /// companion port), the relay (if any) in front of it, then `client`, given the port clients will use and
    /// where the server is reached. Waits until a byte makes the round trip; whatever was started is stopped
    /// if any step fails.
    static func startTwoEnded(
        path: LongPath?, companion: ((ServerPlacement) throws(BenchError) -> ChildProcess)? = nil,
        server: (ServerPlacement) throws(BenchError) -> ChildProcess,
        client: (_ port: UInt16, _ server: Endpoint) throws(BenchError) -> ChildProcess
    ) throws(BenchError) -> RunningRoute {
        let placement = try ServerPlacement.across(path)
        let serverEndpoint = placement.listen
        let companionProcess = try companion?(placement)
        let serverProcess: ChildProcess
        do {
            if let companionProcess { try waitUntilListening(companionProcess, on: placement.companion) }
            serverProcess = try server(placement)
        } catch {
            companionProcess?.stop()
            throw error
        }
        var relay: LatencyRelay?
        do {
            try waitUntilListening(serverProcess, on: serverEndpoint)
            let (link, pathRelay) = try longPath(to: serverEndpoint, path: path)
            relay = pathRelay
            let clientPort = try freePort()
            let clientProcess = try client(clientPort, link)
            let route = RunningRoute(
                entry: Endpoint(host: "127.0.0.1", port: clientPort), link: link, local: clientProcess,
                remote: serverProcess, companion: companionProcess, relay: relay)
            try route.waitUntilServing()
            return route
        } catch {
            serverProcess.stop()
            companionProcess?.stop()
            relay?.stop()
            throw error
        }
    }

    /// Waits until `process` accepts connections on `endpoint`, so that a client started next finds it.
    static func waitUntilListening(_ process: ChildProcess, on endpoint: Endpoint, seconds: Double = 10)
        throws(BenchError)
    {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw BenchError("\(process.name) exited: \(process.logTail)") }
            if let socket = try? Socket.connect(to: endpoint.resolve(), timeout: 1) {
                socket.close()
                return
            }
            sleep(seconds: 0.05)
        }
        process.stop()
        throw BenchError("\(process.name) did not listen on \(endpoint) within \(Int(seconds)) s: \(process.logTail)")
    }

    /// Starts a relay shaped like `path` in front of `upstream`, if `path` is one, and returns where to
    /// connect instead. An emulated path needs no relay: `upstream` is already across it.
    static func longPath(to upstream: Endpoint, path: LongPath?) throws(BenchError) -> (Endpoint, LatencyRelay?) {
        guard case .relay(let shape) = path else { return (upstream, nil) }
        let relay = try LatencyRelay(
            listeningOn: Endpoint(host: "127.0.0.1", port: 0), upstream: upstream, shape: shape)
        try relay.start()
        return (relay.endpoint, relay)
    }

    /// A loopback port nobody listens on right now, for a program that must be told its port. Drawn from below
    /// the kernel's ephemeral range, which connections take their own ports from: a port the kernel handed out
    /// (port 0) could go to a connection made before the program binds it (a tcptunnel remote agent once failed
    /// with "Address already in use" beside the test suites).
    static func freePort() throws(BenchError) -> UInt16 {
        let ephemeral =
            SystemFile.text("/proc/sys/net/ipv4/ip_local_port_range")?
            .split(whereSeparator: \.isWhitespace).first.flatMap { UInt16($0) } ?? 32768
        for _ in 0..<200 {
            let port = UInt16.random(in: 10_000..<max(10_001, ephemeral))
            guard let address = try? Endpoint(host: "127.0.0.1", port: port).resolve(passive: true),
                let socket = try? Socket.listen(on: address)
            else { continue }
            socket.close()
            return port
        }
        throw BenchError("cannot find a free loopback port below the ephemeral range (\(ephemeral))")
    }
}
