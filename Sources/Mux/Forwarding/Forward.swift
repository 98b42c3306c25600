/// One way a local agent takes clients in, as its command line names it (ssh's `-L`, `-D` and `-R` syntax).
public enum Forward: Sendable, Hashable, CustomStringConvertible {
    /// `--listen`: clients of `listen` here reach the remote agent's default target.
    case tunnel(listen: Endpoint)
    /// `-L`: clients of `listen` here reach `target`, connected from the remote agent's side.
    case local(listen: Endpoint, target: Endpoint)
    /// `-L …/udp`: datagrams to `listen` here reach `target` from the remote agent's side, each client's
    /// replies coming back to it.
    case localUDP(listen: Endpoint, target: Endpoint)
    /// `-D`: a SOCKS5 server on `listen` here; each CONNECT target is connected from the remote agent's side.
    case socks(listen: Endpoint)
    /// `-R`: the remote agent listens on `listen` there; its clients reach `target`, connected from here.
    case reverse(listen: Endpoint, target: Endpoint)
    /// `-R …/udp`: the remote agent takes datagrams on `listen` there; each client's reach `target` from here,
    /// and the replies go back to it.
    case reverseUDP(listen: Endpoint, target: Endpoint)

    /// The address a forward listens on when the user gives no BIND: loopback, so that listening on every
    /// interface is always asked for.
    public static let defaultBind = "127.0.0.1"

    /// Parses `-L [BIND:]PORT:HOST:HOSTPORT[/tcp|/udp]` (TCP without a suffix).
    public static func local(parsing text: String) throws(ForwardError) -> Forward {
        let (body, kind) = TrafficKind.split(text)
        let (listen, target) = try parseTunnel(body, option: "-L", as: text)
        return kind == .udp ? .localUDP(listen: listen, target: target) : .local(listen: listen, target: target)
    }

    /// Parses `-D [BIND:]PORT`.
    public static func socks(parsing text: String) throws(ForwardError) -> Forward {
        let parts = try split(text, option: "-D")
        guard (1...2).contains(parts.count) else {
            throw ForwardError(option: "-D", text: text, reason: "expected [BIND:]PORT")
        }
        return .socks(listen: try endpoint(parts.count == 2 ? parts[0] : defaultBind, parts.last!, text, "-D"))
    }

    /// Parses `-R [BIND:]PORT:HOST:HOSTPORT[/tcp|/udp]` (TCP without a suffix). BIND must be an address (the
    /// remote agent binds it as given) and PORT not 0 (the remote agent's rules name ports).
    public static func reverse(parsing text: String) throws(ForwardError) -> Forward {
        let (body, kind) = TrafficKind.split(text)
        let (listen, target) = try parseTunnel(body, option: "-R", as: text)
        guard IPNetwork.bytes(of: listen.host) != nil, listen.port != 0 else {
            throw ForwardError(option: "-R", text: text, reason: "BIND must be an IP address and PORT from 1 to 65535")
        }
        return kind == .udp ? .reverseUDP(listen: listen, target: target) : .reverse(listen: listen, target: target)
    }

    public var description: String {
        switch self {
        case .tunnel(let listen): "\(listen) → the remote agent's target"
        case .local(let listen, let target): "\(listen) → \(target) (-L)"
        case .localUDP(let listen, let target): "\(listen) → \(target) (-L, UDP)"
        case .socks(let listen): "SOCKS5 on \(listen) (-D)"
        case .reverse(let listen, let target): "\(listen) on the remote side → \(target) (-R)"
        case .reverseUDP(let listen, let target): "\(listen) on the remote side → \(target) (-R, UDP)"
        }
    }

    /// The option that gives this kind of forward, `-L …/udp` for a UDP one: a reload keeps the forwards of a
    /// kind whose new one cannot start.
    public var kindName: String {
        switch self {
        case .tunnel: "--listen"
        case .local: "-L"
        case .localUDP: "-L …/udp"
        case .socks: "-D"
        case .reverse: "-R"
        case .reverseUDP: "-R …/udp"
        }
    }

    /// The socket this agent binds for the forward, and whether it is UDP's; nil for `-R`, which listens on the
    /// remote side.
    public var localSocket: (address: Endpoint, isUDP: Bool)? {
        switch self {
        case .tunnel(let listen), .local(let listen, _), .socks(let listen): (listen, false)
        case .localUDP(let listen, _): (listen, true)
        case .reverse, .reverseUDP: nil
        }
    }

    /// The forward as its option would give it, for a metric's label: `-L 127.0.0.1:8080:db:5432`.
    public var metricLabel: String {
        switch self {
        case .tunnel(let listen): "--listen \(listen)"
        case .local(let listen, let target): "-L \(listen):\(target)"
        case .localUDP(let listen, let target): "-L \(listen):\(target)/udp"
        case .socks(let listen): "-D \(listen)"
        case .reverse(let listen, let target): "-R \(listen):\(target)"
        case .reverseUDP(let listen, let target): "-R \(listen):\(target)/udp"
        }
    }

    /// Parses `body`, the forward `text` was given as without its kind suffix.
    private static func parseTunnel(_ body: String, option: String, as text: String) throws(ForwardError) -> (
        Endpoint, Endpoint
    ) {
        let parts = try split(body, option: option)
        guard (3...4).contains(parts.count) else {
            throw ForwardError(
                option: option, text: text,
                reason: "expected [BIND:]PORT:HOST:HOSTPORT[/udp]")
        }
        let bind = parts.count == 4 ? parts[0] : defaultBind
        let listen = try endpoint(bind, parts[parts.count - 3], text, option)
        let target = try endpoint(parts[parts.count - 2], parts[parts.count - 1], text, option)
        guard target.port != 0 else { throw ForwardError(option: option, text: text, reason: "HOSTPORT cannot be 0") }
        return (listen, target)
    }

    /// Splits on the colons outside brackets, dropping the brackets: `[::1]:80` gives `::1` and `80`.
    private static func split(_ text: String, option: String) throws(ForwardError) -> [String] {
        var parts: [String] = []
        var current = ""
        var inBrackets = false
        for character in text {
            switch character {
            case "[" where !inBrackets && current.isEmpty: inBrackets = true
            case "]" where inBrackets: inBrackets = false
            case ":" where !inBrackets:
                parts.append(current)
                current = ""
            default: current.append(character)
            }
        }
        guard !inBrackets else { throw ForwardError(option: option, text: text, reason: "a '[' is not closed") }
        return parts + [current]
    }

    private static func endpoint(_ host: String, _ port: String, _ text: String, _ option: String)
        throws(ForwardError) -> Endpoint
    {
        guard WireHost(host) != nil else {
            throw ForwardError(option: option, text: text, reason: "'\(host)' is not a host name or IP address")
        }
        guard let number = UInt16(port) else {
            throw ForwardError(option: option, text: text, reason: "'\(port)' is not a port from 0 to 65535")
        }
        return Endpoint(host: host, port: number)
    }
}

/// A forward (`-L`, `-D`, `-R`) that could not be parsed, and why.
public struct ForwardError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The option it was given with.
    public let option: String
    /// The text as given.
    public let text: String
    /// What is wrong with it.
    public let reason: String

    public var description: String { "bad \(option) '\(text)': \(reason)" }
}
