import FoundationEssentials
import Mux

/// No tunnel: clients connect to the target (through the long path, if any).
struct DirectRoute: Route {
    let name = "direct"
    let detail = "no tunnel"
    let requirements: [(program: String, package: String)] = []
    let carriesDatagrams = true

    func start(target: Endpoint, path: LongPath?, context: RouteContext) throws(BenchError) -> RunningRoute {
        let (entry, relay) = try RunningRoute.longPath(to: target, path: path)
        return RunningRoute(entry: entry, local: nil, remote: nil, relay: relay)
    }
}

/// tcptunnel itself: both agents of this very build, as separate processes, with the native transport or, as
/// `tcptunnel-tls`, the TLS transport in front of an `openssl s_server` cover beside the remote agent.
struct TCPTunnelRoute: Route {
    /// Which transport the agents use.
    enum Transport: Sendable {
        case native, tls
    }

    var transport = Transport.native

    var name: String { transport == .native ? "tcptunnel" : "tcptunnel-tls" }
    var detail: String {
        transport == .native
            ? "XChaCha20-Poly1305, multiplexed links (--links)"
            : "the same, in TLS 1.3 records shaped like an openssl s_server cover"
    }
    var requirements: [(program: String, package: String)] {
        transport == .native ? [] : [(program: "openssl", package: "openssl")]
    }
    /// UDP on the same port number as the TCP forward (`-L …/udp`), to the target's UDP echo.
    let carriesDatagrams = true

    func start(target: Endpoint, path: LongPath?, context: RouteContext) throws(BenchError) -> RunningRoute {
        let binary = ChildProcess.ownExecutable
        let key = context.scratch.appendingPathComponent("tunnel.key").path
        if !FileManager.default.fileExists(atPath: key) {
            let keygen = try ChildProcess(
                "keygen", executable: binary, arguments: ["keygen", "--out", key], scratch: context.scratch)
            guard keygen.waitUntilExit() else { throw BenchError("tcptunnel keygen failed: \(keygen.logTail)") }
        }
        let flows = String(max(context.maxFlows, TunnelSettings().maxUDPFlows))
        let common =
            ["--key-file", key, "--log-level", "warning", "--max-streams", String(context.maxStreams + 16)]
            + ["--max-udp-flows", flows, "--max-udp-flows-per-source", flows]
        let isTLS = transport == .tls
        if isTLS { try Self.makeCoverCertificate(in: context.scratch) }
        return try RunningRoute.startTwoEnded(
            path: path,
            companion: isTLS
                ? { placement throws(BenchError) in try Self.startCover(placement, scratch: context.scratch) } : nil,
            server: { placement throws(BenchError) in
                try ChildProcess(
                    "tcptunnel remote", executable: binary,
                    arguments: ["remote", "--listen", placement.listen.description, "--target", target.description]
                        + ["--allow", "\(target)/udp"]
                        + (isTLS ? ["--transport", "tls", "--cover", placement.companion.description] : []) + common,
                    scratch: context.scratch, namespace: placement.namespace)
            },
            client: { port, remote throws(BenchError) in
                try ChildProcess(
                    "tcptunnel local", executable: binary,
                    arguments: ["local", "--listen", "127.0.0.1:\(port)", "--remote", remote.description]
                        + ["-L", "127.0.0.1:\(port):\(target)/udp", "--links", String(context.tcptunnelLinks)]
                        + (isTLS ? ["--transport", "tls", "--sni", Self.coverName] : []) + common,
                    scratch: context.scratch)
            })
    }

    private static let coverName = "cover.example"

    /// A self-signed certificate for the cover, made once per run.
    private static func makeCoverCertificate(in scratch: URL) throws(BenchError) {
        guard !FileManager.default.fileExists(atPath: scratch.appendingPathComponent("cover.pem").path) else { return }
        let request = try ChildProcess(
            "openssl req", executable: "openssl",
            arguments: [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                "-subj", "/CN=\(coverName)", "-keyout", scratch.appendingPathComponent("cover.key").path, "-out",
                scratch.appendingPathComponent("cover.pem").path,
            ], scratch: scratch)
        guard request.waitUntilExit() else { throw BenchError("openssl req failed: \(request.logTail)") }
    }

    /// `openssl s_server` as the cover, on the placement's companion port.
    private static func startCover(_ placement: ServerPlacement, scratch: URL) throws(BenchError) -> ChildProcess {
        try ChildProcess(
            "cover (openssl s_server)", executable: "openssl",
            arguments: [
                "s_server", "-accept", placement.companion.description, "-cert",
                scratch.appendingPathComponent("cover.pem").path, "-key",
                scratch.appendingPathComponent("cover.key").path, "-www", "-quiet",
            ], scratch: scratch, namespace: placement.namespace)
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
