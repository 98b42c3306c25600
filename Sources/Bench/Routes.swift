import FoundationEssentials
import Mux

/// No tunnel: clients connect to the target (through the long path, if any).
struct DirectRoute: Route {
    let name = "direct"
    let detail = "no tunnel"
    let requirements: [(program: String, package: String)] = []

    func start(target: Endpoint, path: LongPath?, context: RouteContext) throws(BenchError) -> RunningRoute {
        let (entry, relay) = try RunningRoute.longPath(to: target, path: path)
        return RunningRoute(entry: entry, local: nil, remote: nil, relay: relay)
    }
}

/// tcptunnel itself: both agents of this very build, as separate processes.
struct TCPTunnelRoute: Route {
    let name = "tcptunnel"
    let detail = "XChaCha20-Poly1305, multiplexed links (--links)"
    let requirements: [(program: String, package: String)] = []

    func start(target: Endpoint, path: LongPath?, context: RouteContext) throws(BenchError) -> RunningRoute {
        let binary = ChildProcess.ownExecutable
        let key = context.scratch.appendingPathComponent("tunnel.key").path
        if !FileManager.default.fileExists(atPath: key) {
            let keygen = try ChildProcess(
                "keygen", executable: binary, arguments: ["keygen", "--out", key], scratch: context.scratch)
            guard keygen.waitUntilExit() else { throw BenchError("tcptunnel keygen failed: \(keygen.logTail)") }
        }
        let common = ["--key-file", key, "--log-level", "warning", "--max-streams", String(context.maxStreams + 16)]
        return try RunningRoute.startTwoEnded(
            path: path,
            server: { placement throws(BenchError) in
                try ChildProcess(
                    "tcptunnel remote", executable: binary,
                    arguments: ["remote", "--listen", placement.listen.description, "--target", target.description]
                        + common,
                    scratch: context.scratch, namespace: placement.namespace)
            },
            client: { port, remote throws(BenchError) in
                try ChildProcess(
                    "tcptunnel local", executable: binary,
                    arguments: ["local", "--listen", "127.0.0.1:\(port)", "--remote", remote.description]
                        + ["--links", String(context.tcptunnelLinks)] + common,
                    scratch: context.scratch)
            })
    }
}

/// socat: a plain relay, no encryption: the floor any tunnel's latency is compared with.
struct SocatRoute: Route {
    let name = "socat"
    let detail = "plain TCP relay, fork per connection, no crypto"
    let requirements = [(program: "socat", package: "socat")]

    func start(target: Endpoint, path: LongPath?, context: RouteContext) throws(BenchError) -> RunningRoute {
        let (upstream, relay) = try RunningRoute.longPath(to: target, path: path)
        let port = try RunningRoute.freePort()
        let socat = try ChildProcess(
            "socat", executable: "socat",
            arguments: [
                "TCP-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork,backlog=4096",
                "TCP:\(upstream.host):\(upstream.port)",
            ], scratch: context.scratch)
        let route = RunningRoute(
            entry: Endpoint(host: "127.0.0.1", port: port), local: socat, remote: nil, relay: relay)
        try route.waitUntilServing()
        return route
    }
}
