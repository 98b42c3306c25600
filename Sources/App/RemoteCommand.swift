import ArgumentParser
import Crypto
import Mux

/// `tcptunnel remote`: accepts links from local agents and connects their streams to the target.
struct RemoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remote",
        abstract: "Run the remote agent: accept links from local agents and connect each stream to the target.",
        discussion: """
            The address to listen on is given as --listen HOST:PORT, or, as in the original tcptunnel, as two arguments: tcptunnel remote BIND-HOST BIND-PORT. The port is meant to be reachable by local agents; it answers nothing to a peer without the key.

            Local agents reach --target, and only what --allow rules name: a name rule (db.internal:5432, *.example.com:443) matches the name asked for; an address or network rule (10.1.2.3:22, 10.0.0.0/8:22, [::1]:80) matches every address actually dialled, so a name cannot reach an address no rule covers. Ports are a port, LOW-HIGH or *. A rule covers TCP streams and UDP flows (-L …/udp) alike, unless it ends in /tcp or /udp; --target is for TCP only. Reverse forwards (-R) may listen only where --allow-listen rules say; a rule without BIND means 127.0.0.1.
            """
    )

    @Argument(help: ArgumentHelp("Host to listen on (same as --listen HOST:PORT).", valueName: "bind-host"))
    var bindHost: String?

    @Argument(help: ArgumentHelp("Port to listen on.", valueName: "bind-port"))
    var bindPort: String?

    @Option(name: .long, help: ArgumentHelp("Address local agents connect to.", valueName: "host:port"))
    var listen: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The default target: where streams that name none go (the local agent's --listen). Always allowed.",
            valueName: "host:port"))
    var target: String = "127.0.0.1:1081"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Targets local agents may also ask for (-L, -D): HOST:PORT, HOST:LOW-HIGH, HOST:*, *.example.com:443, 10.0.0.0/8:22, [::1]:80; TCP and UDP alike unless it ends in /tcp or /udp (10.0.0.53:53/udp).",
            valueName: "rule"))
    var allow: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Where local agents may have this agent listen for their -R forwards, TCP and UDP alike unless it ends in /tcp or /udp; without it, -R is refused.",
            valueName: "[bind:]port[-port][/udp]"))
    var allowListen: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Connections waiting for their hello at once; when full, an old one is dropped for each new one (at most 1000000).",
            valueName: "count"))
    var maxPending: Int = TunnelSettings().maxPending

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Connections waiting for their hello at once from one IPv4 address or IPv6 /64.", valueName: "count"))
    var maxPendingPerSource: Int = TunnelSettings().maxPendingPerSource

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Sessions held at once while they wait for their local agent to resume them; beyond it, the one waiting longest is ended (at most 1000000).",
            valueName: "count"))
    var maxDetachedSessions: Int = TunnelSettings().maxDetachedSessions

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Bytes the waiting sessions may hold at once (data kept to send again and queued), e.g. 256M; beyond it, the one waiting longest is ended.",
            valueName: "bytes"))
    var maxDetachedBytes = ByteCount(TunnelSettings().maxDetachedBytes)

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A load balancer (address or CIDR block) whose connections start with a PROXY v2 header (HAProxy's send-proxy-v2); the client it names stands for the connection in logs and per-source limits.",
            valueName: "cidr"))
    var acceptProxyFrom: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "How links look on the wire: native (tcptunnel's own), or tls (TLS 1.3 in the shape of --cover, which answers everyone else).",
            valueName: "native|tls"))
    var transport = TransportName.native

    @Option(
        name: .long,
        help: ArgumentHelp(
            "With --transport tls: a real HTTPS site (TLS 1.3) whose answers local agents' hellos get the shape of, and to which every other connection is relayed.",
            valueName: "host:port"))
    var cover: String?

    @OptionGroup var common: CommonOptions

    mutating func validate() throws {
        try CommonOptions.validate(settings)
        _ = try listenEndpoint()
        _ = try allowList()
        _ = try listenRules()
        _ = try trustedBalancers()
        _ = try coverEndpoint()
    }

    /// The cover with `--transport tls`; `nil` with the native transport.
    func coverEndpoint() throws -> Endpoint? {
        switch (transport, cover) {
        case (.native, nil): return nil
        case (.native, _?):
            throw ValidationError("--cover is for --transport tls (this agent uses --transport native)")
        case (.tls, nil):
            throw ValidationError(
                "--transport tls needs --cover HOST:PORT: a real HTTPS site whose answers this agent borrows")
        case (.tls, let cover?):
            return try Endpoint(parsingDialled: cover, option: "--cover")
        }
    }

    func run() throws {
        try reportingErrors {
            let keys = try common.loadKeys()
            if common.check {
                let cover = try coverEndpoint().map { cover in
                    (cover, try RemoteAgent.describeCover(cover, connectTimeout: settings.connectTimeout))
                }
                return print(try checkReport(keys: keys, cover: cover))
            }
            try AgentRunner.run(
                logLevel: common.logLevel.level, logFormat: common.logFormat,
                metricsEndpoint: try common.metricsEndpoint(),
                listenOptions: [
                    (
                        try listenEndpoint(),
                        listen.map { "--listen \($0)" } ?? "BIND-HOST BIND-PORT \(bindHost ?? "") \(bindPort ?? "")"
                    )
                ]
            ) { logger, metrics in
                let agent = try RemoteAgent(
                    listen: try listenEndpoint(), allowList: try allowList(), listenRules: try listenRules(),
                    keys: keys, trustedBalancers: try trustedBalancers(), cover: try coverEndpoint(),
                    settings: settings, metrics: metrics, logger: logger)
                return AgentRunner.Agent(start: agent.start, stop: agent.stop) {
                    try reload(agent, keys: keys, from: try AgentRunner.reparse(as: RemoteCommand.self))
                }
            }
        }
    }

    /// Applies `fresh`'s target, rules and log level to the running `agent`, which started as this command with
    /// `keys`; the report names the other options that changed, which take effect at the next start.
    func reload(_ agent: RemoteAgent, keys: [PreSharedKey], from fresh: RemoteCommand) throws -> ReloadReport {
        let allowList = try fresh.allowList()
        let listenRules = try fresh.listenRules()
        let freshKeys = try fresh.common.loadKeys()
        var report = ReloadReport(
            applied: Reconfiguration(changes: agent.reconfigure(allowList: allowList, listenRules: listenRules)))
        report.apply(logLevel: fresh.common.logLevel.level)
        report.needsRestart = ReloadReport.restartOnly(
            from: try checkReport(keys: keys), to: try fresh.checkReport(keys: freshKeys), command: "remote",
            reloadable: Self.reloadable)
        return report
    }

    /// The options a reload applies to a running remote agent.
    static let reloadable: Set<String> = ["target", "allow", "allow-listen", "log-level"]

    /// The tunables of the link with this agent's own.
    var settings: TunnelSettings {
        var settings = common.settings
        settings.maxPending = maxPending
        settings.maxPendingPerSource = maxPendingPerSource
        settings.maxDetachedSessions = maxDetachedSessions
        settings.maxDetachedBytes = maxDetachedBytes.bytes
        return settings
    }

    /// What `--check` prints: the effective settings as a config file would hold them, and, with the TLS
    /// transport, the `cover` and how it answered when asked (`RemoteAgent.describeCover`).
    func checkReport(keys: [PreSharedKey], cover: (endpoint: Endpoint, answer: String)? = nil) throws -> String {
        var transportLines = [TOMLLine.string("transport", transport.rawValue)]
        if let cover {
            transportLines.append(TOMLLine.string("cover", "\(cover.endpoint)") + "  # answers \(cover.answer)")
        }
        let lines =
            [
                "# tcptunnel remote: the configuration is valid; effective settings:",
                TOMLLine.string("listen", "\(try listenEndpoint())"), TOMLLine.string("target", target),
            ] + transportLines + [
                TOMLLine.array("allow", allow), TOMLLine.array("allow-listen", allowListen),
                "max-pending = \(maxPending)", "max-pending-per-source = \(maxPendingPerSource)",
                "max-detached-sessions = \(maxDetachedSessions)",
                TOMLLine.string("max-detached-bytes", maxDetachedBytes.defaultValueDescription),
                TOMLLine.array("accept-proxy-from", acceptProxyFrom),
            ] + common.effectiveLines(keys: keys)
        return lines.joined(separator: "\n")
    }

    func allowList() throws -> AllowList {
        let rules = try allow.map { text in
            do {
                return try AllowRule(parsing: text)
            } catch {
                throw ValidationError("--allow: \(error)")
            }
        }
        return AllowList(defaultTarget: try Endpoint(parsingDialled: target, option: "--target"), rules: rules)
    }

    func trustedBalancers() throws -> TrustedBalancers {
        do {
            return try TrustedBalancers(parsing: acceptProxyFrom)
        } catch {
            throw ValidationError("--accept-proxy-from: \(error)")
        }
    }

    func listenRules() throws -> [ListenRule] {
        try allowListen.map { text in
            do {
                return try ListenRule(parsing: text)
            } catch {
                throw ValidationError("--allow-listen: \(error)")
            }
        }
    }

    func listenEndpoint() throws -> Endpoint {
        switch (bindHost, bindPort, listen) {
        case (nil, nil, let listen?):
            return try Endpoint(parsingArgument: listen, option: "--listen")
        case (let host?, let port?, nil):
            return try Endpoint(host: host, portArgument: port)
        case (nil, nil, nil):
            throw ValidationError("missing the address to listen on: pass --listen HOST:PORT (or BIND-HOST BIND-PORT)")
        case (_, nil, _):
            throw ValidationError("missing BIND-PORT after BIND-HOST")
        default:
            throw ValidationError(
                "give the listen address either as --listen HOST:PORT or as BIND-HOST BIND-PORT, not both")
        }
    }
}
