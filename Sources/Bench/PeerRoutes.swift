import FoundationEssentials
import Glibc
import Mux

/// `ssh -L` with chacha20-poly1305@openssh.com, to a private sshd on a loopback port with keys made
/// for the run: the tunnel most users already have.
struct SSHRoute: Route {
    let name = "ssh -L"
    let detail = "OpenSSH, chacha20-poly1305@openssh.com, one connection"
    let requirements = [
        (program: "ssh", package: "openssh-client"), (program: "sshd", package: "openssh-server"),
        (program: "ssh-keygen", package: "openssh-client"),
    ]

    func start(target: Endpoint, path: LongPath?, context: RouteContext) throws(BenchError) -> RunningRoute {
        let directory = context.scratch.appendingPathComponent("ssh").path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // sshd insists on its privilege separation directory even when it runs as the calling user.
        try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        for key in ["host", "client"] where !FileManager.default.fileExists(atPath: "\(directory)/\(key)") {
            let keygen = try ChildProcess(
                "ssh-keygen", executable: "ssh-keygen",
                arguments: ["-q", "-t", "ed25519", "-N", "", "-f", "\(directory)/\(key)"], scratch: context.scratch)
            guard keygen.waitUntilExit() else { throw BenchError("ssh-keygen failed: \(keygen.logTail)") }
        }
        try? FileManager.default.removeItem(atPath: "\(directory)/authorized_keys")
        try? FileManager.default.copyItem(atPath: "\(directory)/client.pub", toPath: "\(directory)/authorized_keys")
        let user =
            ProcessInfo.processInfo.environment["USER"] ?? getpwuid(getuid()).map {
                String(cString: $0.pointee.pw_name)
            } ?? "root"
        return try RunningRoute.startTwoEnded(
            path: path,
            server: { placement throws(BenchError) in
                let config = """
                    Port \(placement.listen.port)
                    ListenAddress \(placement.listen.host)
                    HostKey \(directory)/host
                    AuthorizedKeysFile \(directory)/authorized_keys
                    PermitRootLogin prohibit-password
                    PasswordAuthentication no
                    KbdInteractiveAuthentication no
                    UsePAM no
                    StrictModes no
                    AllowTcpForwarding yes
                    MaxStartups 1000
                    PidFile none
                    Ciphers chacha20-poly1305@openssh.com
                    """
                _ = FileManager.default.createFile(atPath: "\(directory)/sshd_config", contents: Data(config.utf8))
                return try ChildProcess(
                    "sshd", executable: "sshd", arguments: ["-D", "-e", "-f", "\(directory)/sshd_config"],
                    scratch: context.scratch, namespace: placement.namespace)
            },
            client: { port, server throws(BenchError) in
                try ChildProcess(
                    "ssh", executable: "ssh",
                    arguments: [
                        "-N", "-F", "/dev/null", "-i", "\(directory)/client", "-p", String(server.port),
                        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                        "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR", "-c", "chacha20-poly1305@openssh.com",
                        "-L", "127.0.0.1:\(port):\(target.host):\(target.port)", "\(user)@\(server.host)",
                    ], scratch: context.scratch)
            })
    }
}

/// spiped: one encrypted TCP connection per client (AES-256-CTR with HMAC-SHA256), no multiplexing. Its
/// connection limit is raised, and its handshake timeout from 5 s to 30 s, so that load alone does not make
/// it refuse clients.
struct SpipedRoute: Route {
    let name = "spiped"
    let detail = "spiped, AES-256-CTR + HMAC-SHA256, a connection per client"
    let requirements = [(program: "spiped", package: "spiped")]

    func start(target: Endpoint, path: LongPath?, context: RouteContext) throws(BenchError) -> RunningRoute {
        let key = context.scratch.appendingPathComponent("spiped.key").path
        var secret = [UInt8](repeating: 0, count: 32)
        guard getentropy(&secret, secret.count) == 0,
            FileManager.default.createFile(atPath: key, contents: Data(secret), attributes: [.posixPermissions: 0o600])
        else { throw BenchError("cannot write the spiped key to \(key)") }
        let options = ["-F", "-n", String(context.maxStreams + 16), "-o", "30", "-k", key]
        return try RunningRoute.startTwoEnded(
            path: path,
            server: { placement throws(BenchError) in
                try ChildProcess(
                    "spiped server", executable: "spiped",
                    arguments: [
                        "-d", "-s", "[\(placement.listen.host)]:\(placement.listen.port)", "-t",
                        "[\(target.host)]:\(target.port)",
                    ] + options,
                    scratch: context.scratch, namespace: placement.namespace)
            },
            client: { port, server throws(BenchError) in
                try ChildProcess(
                    "spiped client", executable: "spiped",
                    arguments: ["-e", "-s", "[127.0.0.1]:\(port)", "-t", "[\(server.host)]:\(server.port)"] + options,
                    scratch: context.scratch)
            })
    }
}

/// shadowsocks-libev's ss-tunnel to ss-server with xchacha20-ietf-poly1305 (TCP_NODELAY on, as its
/// documentation advises for interactive use): a connection per client.
struct ShadowsocksRoute: Route {
    let name = "ss-tunnel"
    let detail = "shadowsocks-libev, xchacha20-ietf-poly1305, a connection per client; UDP relayed as UDP (-u)"
    let carriesDatagrams = true
    let requirements = [
        (program: "ss-tunnel", package: "shadowsocks-libev"), (program: "ss-server", package: "shadowsocks-libev"),
    ]

    func start(target: Endpoint, path: LongPath?, context: RouteContext) throws(BenchError) -> RunningRoute {
        let password = (0..<24).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.joined()
        let cipher = ["-m", "xchacha20-ietf-poly1305", "-k", password, "--no-delay", "-u"]
        return try RunningRoute.startTwoEnded(
            path: path,
            server: { placement throws(BenchError) in
                try ChildProcess(
                    "ss-server", executable: "ss-server",
                    arguments: ["-s", placement.listen.host, "-p", String(placement.listen.port)] + cipher,
                    scratch: context.scratch, namespace: placement.namespace)
            },
            client: { port, server throws(BenchError) in
                try ChildProcess(
                    "ss-tunnel", executable: "ss-tunnel",
                    arguments: [
                        "-s", server.host, "-p", String(server.port), "-b", "127.0.0.1", "-l", String(port),
                        "-L", "\(target.host):\(target.port)",
                    ] + cipher, scratch: context.scratch)
            })
    }
}

/// Every route by the name `--peers` uses.
enum Routes {
    static let tcptunnel: any Route = TCPTunnelRoute()
    static let peers: [String: any Route] = [
        "tcptunnel-tls": TCPTunnelRoute(transport: .tls), "direct": DirectRoute(), "socat": SocatRoute(),
        "ssh": SSHRoute(), "spiped": SpipedRoute(), "ss-tunnel": ShadowsocksRoute(),
    ]
    /// The order peers run and appear in tables.
    static let peerOrder = ["tcptunnel-tls", "direct", "socat", "ssh", "spiped", "ss-tunnel"]
}
