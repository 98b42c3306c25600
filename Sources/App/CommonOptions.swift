import ArgumentParser
import Crypto
import FoundationEssentials
import Logging
import Mux

/// Options shared by both agents: the key, logging, and the tunables of the link.
struct CommonOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "TOML file of options: each long option is a key (repeatable ones take arrays); the command line wins.",
            valueName: "file"), completion: .file(extensions: ["toml"]))
    var config: String?

    @Flag(
        name: .long,
        help: "Check the options, config file and key, print the effective settings, and exit (0 if all is well).")
    var check = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "File holding the base64 pre-shared key (mode 0600). Without it, the key is read from the "
                + "TCPTUNNEL_KEY environment variable, else from systemd's credential 'key' (and 'key-2'). "
                + "The remote agent takes it twice during a key rotation.",
            valueName: "file"), completion: .file())
    var keyFile: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp("How much to log.", valueName: "level"))
    var logLevel = LogLevel(.info)

    @Option(
        name: .long,
        help: ArgumentHelp("How log lines are written: text, or json (one object per line).", valueName: "format"))
    var logFormat = LogFormat.text

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Serve Prometheus metrics at http://HOST:PORT/metrics (keep it on a private address).",
            valueName: "host:port"))
    var metrics: String?

    /// Where to serve metrics, if anywhere.
    func metricsEndpoint() throws -> Endpoint? {
        try metrics.map { try Endpoint(parsingArgument: $0, option: "--metrics") }
    }

    @Option(
        name: .long, help: ArgumentHelp("Receive window per stream, e.g. 1M or 256K (64K to 2G).", valueName: "bytes"))
    var streamWindow: ByteCount = ByteCount(TunnelSettings().streamWindow)

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Largest window a stream grows to on a long, fast path, e.g. 16M (window ÷ RTT caps one stream; at most 2G).",
            valueName: "bytes"))
    var maxStreamWindow: ByteCount = ByteCount(TunnelSettings().maxStreamWindow)

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Memory all streams of one link may hold for slow readers, e.g. 64M (at most 64G).", valueName: "bytes"))
    var linkBudget: ByteCount = ByteCount(TunnelSettings().linkReceiveBudget)

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Memory all streams of all links together may hold for slow readers, e.g. 256M (at most 64G).",
            valueName: "bytes"))
    var agentBudget: ByteCount = ByteCount(TunnelSettings().agentReceiveBudget)

    @Option(
        name: .long,
        help: ArgumentHelp("Seconds a peer has to complete the handshake (at most 300).", valueName: "seconds"))
    var handshakeTimeout: Double = TunnelSettings().handshakeTimeout

    @Option(name: .long, help: ArgumentHelp("Seconds allowed for a TCP connect (at most 300).", valueName: "seconds"))
    var connectTimeout: Double = TunnelSettings().connectTimeout

    @Option(
        name: .long,
        help: ArgumentHelp("Seconds of silence before a link sends PING (at most 3600).", valueName: "seconds"))
    var keepalive: Double = TunnelSettings().keepaliveInterval

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Seconds without a byte from the peer before the link is declared dead (at most 86400).",
            valueName: "seconds"))
    var deadLinkTimeout: Double = TunnelSettings().deadLinkTimeout

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Streams this agent runs at once; clients beyond it are refused (at most 1000000).", valueName: "count"))
    var maxStreams: Int = TunnelSettings().maxStreams

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Seconds a client or target may accept no data before its stream is reset (0: never; at most 604800).",
            valueName: "seconds"))
    var writeTimeout: Double = TunnelSettings().writeTimeout

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Seconds a stream may carry no data either way before it is reset (0: never; at most 604800).",
            valueName: "seconds"))
    var idleTimeout: Double = TunnelSettings().idleTimeout

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Seconds a UDP flow may carry no datagram either way before it ends (at most 604800).",
            valueName: "seconds"))
    var udpIdleTimeout: Double = TunnelSettings().udpIdleTimeout

    @Option(
        name: .long,
        help: ArgumentHelp(
            "UDP flows this agent keeps at once; at the cap one idle 5 s or more is ended for a new one, else the new one is refused (at most 1000000).",
            valueName: "count"))
    var maxUdpFlows: Int = TunnelSettings().maxUDPFlows

    @Option(
        name: .long,
        help: ArgumentHelp(
            "UDP flows at once from one client address (local agent) or one local agent (remote agent).",
            valueName: "count"))
    var maxUdpFlowsPerSource: Int = TunnelSettings().maxUDPFlowsPerSource

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Seconds a link that lost its connection keeps its streams while the local agent connects again and resumes them (0: reset them at once; at most 3600).",
            valueName: "seconds"))
    var resumeTimeout: Double = TunnelSettings().resumeTimeout

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Seconds SIGINT/SIGTERM lets streams in flight finish before resetting them (at most 3600).",
            valueName: "seconds"))
    var drainTimeout: Double = TunnelSettings().drainTimeout

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Send each target a PROXY protocol header naming the client (v1 text, v2 binary), as HAProxy does: the "
                + "remote agent for forwarded clients, the local agent for -R clients.",
            valueName: "version"))
    var proxyProtocol: ProxyProtocolVersion?

    /// The settings these options describe.
    var settings: TunnelSettings {
        var settings = TunnelSettings()
        settings.proxyProtocol = proxyProtocol
        settings.streamWindow = streamWindow.bytes
        settings.maxStreamWindow = maxStreamWindow.bytes
        settings.linkReceiveBudget = linkBudget.bytes
        settings.agentReceiveBudget = agentBudget.bytes
        settings.handshakeTimeout = handshakeTimeout
        settings.connectTimeout = connectTimeout
        settings.keepaliveInterval = keepalive
        settings.deadLinkTimeout = deadLinkTimeout
        settings.maxStreams = maxStreams
        settings.writeTimeout = writeTimeout
        settings.idleTimeout = idleTimeout
        settings.drainTimeout = drainTimeout
        settings.udpIdleTimeout = udpIdleTimeout
        settings.maxUDPFlows = maxUdpFlows
        settings.maxUDPFlowsPerSource = maxUdpFlowsPerSource
        settings.resumeTimeout = resumeTimeout
        return settings
    }

    mutating func validate() throws {
        _ = try metricsEndpoint()
        try Self.validate(settings)
    }

    /// Throws a usage error naming the option of the first setting in `settings` out of its range.
    static func validate(_ settings: TunnelSettings) throws {
        do {
            try settings.validate()
        } catch {
            throw ValidationError("\(optionNames[error.field] ?? error.field): \(error.reason)")
        }
    }

    /// The effective values of these options as config-file lines, for `--check`; the keys appear only as
    /// fingerprints.
    func effectiveLines(keys: [PreSharedKey]) -> [String] {
        let fingerprints = "fingerprint \(keys.map(\.fingerprint).joined(separator: ", "))"
        let keyLine =
            switch keySource {
            case .files(let paths): TOMLLine.array("key-file", paths) + "  # \(fingerprints)"
            case let source?: "# key from \(source), \(fingerprints)"
            case nil: "# key: none"
            }
        return [keyLine] + [
            TOMLLine.string("log-level", logLevel.level.rawValue), TOMLLine.string("log-format", logFormat.rawValue),
            metrics.map { TOMLLine.string("metrics", $0) } ?? "# metrics: off",
            TOMLLine.string("stream-window", streamWindow.defaultValueDescription),
            TOMLLine.string("max-stream-window", maxStreamWindow.defaultValueDescription),
            TOMLLine.string("link-budget", linkBudget.defaultValueDescription),
            TOMLLine.string("agent-budget", agentBudget.defaultValueDescription),
            TOMLLine.number("handshake-timeout", handshakeTimeout), TOMLLine.number("connect-timeout", connectTimeout),
            TOMLLine.number("keepalive", keepalive), TOMLLine.number("dead-link-timeout", deadLinkTimeout),
            "max-streams = \(maxStreams)", TOMLLine.number("write-timeout", writeTimeout),
            TOMLLine.number("idle-timeout", idleTimeout), TOMLLine.number("drain-timeout", drainTimeout),
            TOMLLine.number("udp-idle-timeout", udpIdleTimeout), "max-udp-flows = \(maxUdpFlows)",
            "max-udp-flows-per-source = \(maxUdpFlowsPerSource)", TOMLLine.number("resume-timeout", resumeTimeout),
            proxyProtocol.map { TOMLLine.string("proxy-protocol", $0.rawValue) } ?? "# proxy-protocol: off",
        ]
    }

    /// The option behind each `SettingsError` field.
    private static let optionNames = [
        "stream window": "--stream-window", "max stream window": "--max-stream-window",
        "link receive budget": "--link-budget", "agent receive budget": "--agent-budget",
        "handshake timeout": "--handshake-timeout",
        "connect timeout": "--connect-timeout", "keepalive interval": "--keepalive",
        "link wait timeout": "--link-wait-timeout", "write timeout": "--write-timeout",
        "idle timeout": "--idle-timeout", "drain timeout": "--drain-timeout", "max streams": "--max-streams",
        "dead-link timeout": "--dead-link-timeout", "SOCKS handshake timeout": "--socks-handshake-timeout",
        "max pending": "--max-pending", "max pending per source": "--max-pending-per-source",
        "UDP idle timeout": "--udp-idle-timeout", "max UDP flows": "--max-udp-flows",
        "max UDP flows per source": "--max-udp-flows-per-source", "resume timeout": "--resume-timeout",
        "max detached sessions": "--max-detached-sessions", "max detached bytes": "--max-detached-bytes",
        "link max age": "--link-max-age", "link max bytes": "--link-max-bytes",
    ]

    /// Loads the keys from each `--key-file`, else the one in `TCPTUNNEL_KEY`, else systemd's credentials
    /// `key` and `key-2` (`LoadCredential=`, in `$CREDENTIALS_DIRECTORY`). A key is never taken from the
    /// command line, where `ps` would show it.
    func loadKeys() throws -> [PreSharedKey] {
        switch keySource {
        case .environment(let name):
            return [try PreSharedKey(base64: ProcessInfo.processInfo.environment[name] ?? "", source: name)]
        case let source?: return try source.files.map { try PreSharedKey.load(fromFile: $0) }
        case nil:
            throw ExitMessage(
                "no key: pass --key-file FILE, set TCPTUNNEL_KEY, or give systemd's LoadCredential=key:FILE "
                    + "(make a key with: tcptunnel keygen --out FILE)")
        }
    }

    /// Where the keys come from, in the order `loadKeys` looks: `nil` if nowhere.
    var keySource: SecretSource? {
        if !keyFile.isEmpty { return .files(keyFile) }
        if ProcessInfo.processInfo.environment["TCPTUNNEL_KEY"] != nil { return .environment("TCPTUNNEL_KEY") }
        let credentials = ["key", "key-2"].compactMap(SecretSource.credential)
        return credentials.isEmpty ? nil : .credentials(credentials)
    }
}

/// A swift-log level as a command-line value.
struct LogLevel: ExpressibleByArgument, Equatable {
    let level: Logger.Level

    init(_ level: Logger.Level) {
        self.level = level
    }

    init?(argument: String) {
        guard let level = Logger.Level(rawValue: argument.lowercased()) else { return nil }
        self.level = level
    }

    static var allValueStrings: [String] { Logger.Level.allCases.map(\.rawValue) }

    static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }

    var defaultValueDescription: String { level.rawValue }
}

/// A byte count written as a number with an optional K, M or G suffix (binary multiples).
struct ByteCount: ExpressibleByArgument, Equatable {
    let bytes: Int

    init(_ bytes: Int) {
        self.bytes = bytes
    }

    init?(argument: String) {
        let multipliers: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var digits = argument.uppercased()
        var multiplier = 1
        if digits.hasSuffix("IB") { digits.removeLast(2) }
        if let last = digits.last, let factor = multipliers[last] {
            multiplier = factor
            digits.removeLast()
        }
        guard let value = Int(digits), value >= 0, value <= Int.max / multiplier else { return nil }
        bytes = value * multiplier
    }

    var defaultValueDescription: String {
        bytes == 0
            ? "0" : bytes % (1 << 20) == 0 ? "\(bytes >> 20)M" : bytes % (1 << 10) == 0 ? "\(bytes >> 10)K" : "\(bytes)"
    }
}

extension ProxyProtocolVersion: ExpressibleByArgument {}

/// Where an agent's secret (its key, or its SOCKS users) comes from, as `--check` and the errors name it.
enum SecretSource: Equatable, CustomStringConvertible {
    /// Files given on the command line or in the config file.
    case files([String])
    /// An environment variable.
    case environment(String)
    /// systemd credentials (`LoadCredential=`): their files in `$CREDENTIALS_DIRECTORY`.
    case credentials([String])

    /// The files it is read from (none for an environment variable).
    var files: [String] {
        switch self {
        case .files(let paths), .credentials(let paths): paths
        case .environment: []
        }
    }

    /// The file of systemd credential `name`, if the service manager passed one.
    static func credential(_ name: String) -> String? {
        guard let directory = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"] else { return nil }
        let path = "\(directory)/\(name)"
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    var description: String {
        switch self {
        case .files(let paths): paths.joined(separator: ", ")
        case .environment(let name): name
        case .credentials(let paths):
            "systemd credential\(paths.count == 1 ? "" : "s") "
                + paths.map { $0.split(separator: "/").last.map(String.init) ?? $0 }.joined(separator: ", ")
                + " ($CREDENTIALS_DIRECTORY)"
        }
    }
}
