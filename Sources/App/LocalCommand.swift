import ArgumentParser
import Crypto
import Mux

/// `tcptunnel local`: accepts clients and carries them to the remote agent.
struct LocalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local",
        abstract: "Run the local agent: accept clients and tunnel each one to the remote agent.",
        discussion: """
            The remote agent is given as --remote HOST:PORT, or, as in the original tcptunnel, as two arguments: tcptunnel local REMOTE-HOST REMOTE-PORT. Give --remote more than once to link to several remote agents: new clients go to whichever link is up and has the fewest streams, so when one agent dies they go on over the others. --links keeps that many links to each.

            Forwards (each repeatable, all carried over the same links): --listen takes clients to the remote agent's own --target; -L takes them to HOST:HOSTPORT as reached from the remote side (-L 5353:127.0.0.53:53/udp carries UDP datagrams, DNS for one, with each client's replies); -D runs a SOCKS5 server whose CONNECT targets are reached from the remote side; -R has the remote agent listen and bring its clients back to HOST:HOSTPORT as reached from here. BIND defaults to 127.0.0.1; write IPv6 addresses in brackets ([::1]:8080). Without any forward, the agent listens on 127.0.0.1:1082 as --listen.
            """
    )

    static let defaultListen = "127.0.0.1:1082"

    @Argument(help: ArgumentHelp("Remote agent host (same as --remote HOST:PORT).", valueName: "remote-host"))
    var remoteHost: String?

    @Argument(help: ArgumentHelp("Remote agent port.", valueName: "remote-port"))
    var remotePort: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Address whose clients reach the remote agent's --target (default \(defaultListen) when no forward is given).",
            valueName: "host:port"))
    var listen: [String] = []

    @Option(
        name: [.customShort("L"), .customLong("forward")],
        help: ArgumentHelp(
            "Listen on BIND:PORT here; each client reaches HOST:HOSTPORT from the remote side. With /udp at the end, take UDP datagrams on BIND:PORT and carry each client's to HOST:HOSTPORT and its replies back.",
            valueName: "[bind:]port:host:hostport[/udp]"))
    var forward: [String] = []

    @Option(
        name: [.customShort("D"), .customLong("socks")],
        help: ArgumentHelp(
            "A SOCKS5 server on BIND:PORT here; each CONNECT target is reached from the remote side.",
            valueName: "[bind:]port"))
    var socks: [String] = []

    @Option(
        name: [.customShort("R"), .customLong("reverse")],
        help: ArgumentHelp(
            "The remote agent listens on BIND:PORT there (if its --allow-listen allows); each client comes back and reaches HOST:HOSTPORT from this side. With /udp at the end, UDP datagrams do, and the replies go back.",
            valueName: "[bind:]port:host:hostport[/udp]"))
    var reverse: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "File of user:password lines (mode 0600); SOCKS clients must then log in (RFC 1929).", valueName: "file"),
        completion: .file())
    var socksUserFile: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Address of a remote agent; repeat it to link to several (new clients then go to any that is up).",
            valueName: "host:port"))
    var remote: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Links kept to each remote agent, each its own TCP connection; new clients go to the one with the fewest streams.",
            valueName: "count"))
    var links: Int = 1

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Seconds a new client waits for the link to come up before it is closed (at most 3600).",
            valueName: "seconds"))
    var linkWaitTimeout: Double = TunnelSettings().linkWaitTimeout

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Seconds a SOCKS client has for its whole handshake (greeting, login and request together; at most 300).",
            valueName: "seconds"))
    var socksHandshakeTimeout: Double = TunnelSettings().socksHandshakeTimeout

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Seconds after which a link moves to a fresh connection without resetting a stream, for paths that freeze long connections (0: never; else at least 1).",
            valueName: "seconds"))
    var linkMaxAge: Double = TunnelSettings().linkMaxAge

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Bytes after which a link moves to a fresh connection without resetting a stream, e.g. 1G, for paths that freeze a connection after so many bytes (0: never; else at least 1M).",
            valueName: "bytes"))
    var linkMaxBytes = ByteCount(TunnelSettings().linkMaxBytes)

    @Option(
        name: .long,
        help: ArgumentHelp(
            "How links look on the wire: native (tcptunnel's own), or tls (TLS 1.3 in the shape of a browser visiting --sni); the remote agent must use the same.",
            valueName: "native|tls"))
    var transport = TransportName.native

    @Option(
        name: .long,
        help: ArgumentHelp(
            "With --transport tls: the server name the hello carries, the DNS name of the remote agent's --cover site.",
            valueName: "name"))
    var sni: String?

    @OptionGroup var common: CommonOptions

    /// The most links a local agent keeps to one remote agent: each is a TCP connection and two threads on
    /// both agents, and beyond a few the links only split the same path's capacity.
    static let maxLinks = 64

    mutating func validate() throws {
        _ = try remoteEndpoints()
        guard (1...Self.maxLinks).contains(links) else {
            throw ValidationError("--links must be from 1 to \(Self.maxLinks)")
        }
        _ = try forwards()
        try CommonOptions.validate(settings)
        guard common.keyFile.count <= 1 else {
            throw ValidationError(
                "the local agent uses one key: give --key-file once (during a rotation the remote agent takes both)")
        }
        guard socksUserFile == nil || !socks.isEmpty else {
            throw ValidationError("--socks-user-file is for SOCKS listeners: give -D/--socks too")
        }
        _ = try linkTransport()
    }

    /// How the links look on the wire, from `--transport` and `--sni`.
    func linkTransport() throws -> LinkTransport {
        switch (transport, sni) {
        case (.native, nil): return .native
        case (.native, _?): throw ValidationError("--sni is for --transport tls (this agent uses --transport native)")
        case (.tls, nil):
            throw ValidationError("--transport tls needs --sni NAME: the DNS name of the remote agent's --cover site")
        case (.tls, let name?):
            try validateServerName(name)
            return .tls(serverName: name)
        }
    }

    func run() throws {
        try reportingErrors {
            let key = try common.loadKeys()[0]
            let credentials = try loadSocksCredentials()
            if common.check { return print(checkReport(key: key, credentials: credentials)) }
            try AgentRunner.run(
                logLevel: common.logLevel.level, logFormat: common.logFormat,
                metricsEndpoint: try common.metricsEndpoint(), listenOptions: try listenOptions()
            ) { logger, metrics in
                let agent = try LocalAgent(
                    forwards: try forwards(), remotes: try remoteEndpoints(), linksPerRemote: links, key: key,
                    transport: try linkTransport(), socksCredentials: credentials, settings: settings,
                    metrics: metrics, logger: logger)
                return AgentRunner.Agent(start: agent.start, stop: agent.stop) {
                    try reload(agent, key: key, from: try AgentRunner.reparse(as: LocalCommand.self))
                }
            }
        }
    }

    /// Where the SOCKS users come from: `--socks-user-file`, else, when the agent runs a SOCKS listener, systemd's
    /// credential `socks-users` (`LoadCredential=socks-users:FILE`, for services whose user cannot read a root-only
    /// file); `nil` for none, and no login.
    var socksUserSource: SecretSource? {
        if let socksUserFile { return .files([socksUserFile]) }
        guard !socks.isEmpty, let path = SecretSource.credential("socks-users") else { return nil }
        return .credentials([path])
    }

    /// The SOCKS users from `socksUserSource`, if any.
    func loadSocksCredentials() throws -> SocksCredentials? {
        try socksUserSource?.files.first.map { try SocksCredentials.load(fromFile: $0) }
    }

    /// The tunables of the link with this agent's own.
    var settings: TunnelSettings {
        var settings = common.settings
        settings.linkWaitTimeout = linkWaitTimeout
        settings.socksHandshakeTimeout = socksHandshakeTimeout
        settings.linkMaxAge = linkMaxAge
        settings.linkMaxBytes = linkMaxBytes.bytes
        return settings
    }

    /// Applies `fresh`'s forwards, SOCKS users and log level to the running `agent`, which started as this
    /// command with `key`; the report names the other options that changed, which take effect at the next start.
    func reload(_ agent: LocalAgent, key: PreSharedKey, from fresh: LocalCommand) throws -> ReloadReport {
        let forwards = try fresh.forwards()
        let credentials = try fresh.loadSocksCredentials()
        let freshKey = try fresh.common.loadKeys()[0]
        var report = ReloadReport(applied: agent.reconfigure(forwards: forwards, socksCredentials: credentials))
        report.apply(logLevel: fresh.common.logLevel.level)
        report.needsRestart = ReloadReport.restartOnly(
            from: checkReport(key: key, credentials: nil), to: fresh.checkReport(key: freshKey, credentials: nil),
            command: "local", reloadable: Self.reloadable)
        return report
    }

    /// The options a reload applies to a running local agent.
    static let reloadable: Set<String> = ["listen", "forward", "socks", "reverse", "socks-user-file", "log-level"]

    /// What `--check` prints: the effective settings as a config file would hold them.
    func checkReport(key: PreSharedKey, credentials: SocksCredentials?) -> String {
        let forwards = (try? forwards()) ?? []
        let remotes = (try? remoteEndpoints()) ?? []
        let tunnels = forwards.compactMap { forward -> String? in
            if case .tunnel(let listen) = forward { "\(listen)" } else { nil }
        }
        let users = credentials.map { "\($0.userCount) user\($0.userCount == 1 ? "" : "s")" }
        let socksUsers = users.map { "  # \($0)" } ?? ""
        let socksUserLine =
            switch socksUserSource {
            case .files(let paths)?: TOMLLine.string("socks-user-file", paths[0]) + socksUsers
            case let source?: "# SOCKS users from \(source)" + (users.map { ", \($0)" } ?? "")
            case nil: "# socks-user-file: none"
            }
        let lines =
            [
                "# tcptunnel local: the configuration is valid; effective settings:",
                TOMLLine.array("remote", remotes.map(\.description)), "links = \(links)",
                TOMLLine.string("transport", transport.rawValue),
                sni.map { TOMLLine.string("sni", $0) } ?? "# sni: none (native transport)",
                TOMLLine.array("listen", tunnels), TOMLLine.array("forward", forward), TOMLLine.array("socks", socks),
                TOMLLine.array("reverse", reverse),
                socksUserLine,
                TOMLLine.number("link-wait-timeout", linkWaitTimeout),
                TOMLLine.number("socks-handshake-timeout", socksHandshakeTimeout),
                TOMLLine.number("link-max-age", linkMaxAge),
                TOMLLine.string("link-max-bytes", linkMaxBytes.defaultValueDescription),
            ] + common.effectiveLines(keys: [key]) + linkLines(remotes)
            + forwards.compactMap { $0.exposure(socksLoginRequired: credentials != nil).map { "# warning: \($0)" } }
        return lines.joined(separator: "\n")
    }

    /// One comment line per link the agent will keep, numbered as its logs and metrics number them.
    private func linkLines(_ remotes: [Endpoint]) -> [String] {
        let total = remotes.count * links
        return ["# \(total) link\(total == 1 ? "" : "s"):"]
            + remotes.enumerated().flatMap { index, remote in
                (1...links).map { "#   link \(index * links + $0) to \(remote)" }
            }
    }

    /// Each address this agent listens on, with the option that asked for it as the user wrote it.
    func listenOptions() throws -> [(endpoint: Endpoint, option: String)] {
        try writtenForwards().compactMap { forward, option in
            switch forward {
            case .tunnel(let listen), .local(let listen, _), .localUDP(let listen, _), .socks(let listen):
                (listen, option)
            case .reverse, .reverseUDP: nil
            }
        }
    }

    /// Every forward, in the order: --listen, -L, -D, -R.
    func forwards() throws -> [Forward] {
        try writtenForwards().map(\.forward)
    }

    /// Every forward with the option that gave it, as written (`-L 8080:db:5432`), in the order of `forwards()`.
    private func writtenForwards() throws -> [(forward: Forward, option: String)] {
        let noneGiven = listen.isEmpty && forward.isEmpty && socks.isEmpty && reverse.isEmpty
        let tunnels = try (noneGiven ? [Self.defaultListen] : listen).map {
            (Forward.tunnel(listen: try Endpoint(parsingArgument: $0, option: "--listen")), "--listen \($0)")
        }
        return try tunnels + forward.map { (try parse($0, with: Forward.local(parsing:)), "-L \($0)") }
            + socks.map { (try parse($0, with: Forward.socks(parsing:)), "-D \($0)") }
            + reverse.map { (try parse($0, with: Forward.reverse(parsing:)), "-R \($0)") }
    }

    private func parse(_ text: String, with parser: (String) throws(ForwardError) -> Forward) throws -> Forward {
        do {
            return try parser(text)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The remote agents to link to, in the order given.
    func remoteEndpoints() throws -> [Endpoint] {
        switch (remoteHost, remotePort, remote.isEmpty) {
        case (nil, nil, false):
            return try remote.map { try Endpoint(parsingDialled: $0, option: "--remote") }
        case (let host?, let port?, true):
            return [try Endpoint(host: host, portArgument: port, isDialled: true)]
        case (nil, nil, true):
            throw ValidationError("missing the remote agent: pass --remote HOST:PORT (or REMOTE-HOST REMOTE-PORT)")
        case (_, nil, _):
            throw ValidationError("missing REMOTE-PORT after REMOTE-HOST")
        default:
            throw ValidationError(
                "give the remote agent either as --remote HOST:PORT or as REMOTE-HOST REMOTE-PORT, not both")
        }
    }
}
