/// One `--allow-listen` rule of a remote agent: an address and port range where local agents may ask it to
/// listen for their reverse forwards (`-R`), for TCP and UDP alike unless it ends in `/tcp` or `/udp`.
public struct ListenRule: Sendable, Hashable, CustomStringConvertible {
    /// The address to bind, in canonical form, or `nil` for `*` (any address).
    let bind: String?
    let ports: ClosedRange<UInt16>
    /// What may be listened for: TCP, UDP, or both.
    let kinds: Set<TrafficKind>
    /// The rule as written.
    public let description: String

    /// The bind address a rule without one allows: loopback only, so that exposing a port to the network is
    /// always asked for explicitly, as ssh's GatewayPorts does.
    public static let defaultBind = "127.0.0.1"

    /// Parses `[BIND:]PORT[-PORT][/tcp|/udp]`. BIND is an address (IPv6 in brackets) or `*`, and defaults to
    /// 127.0.0.1.
    public init(parsing text: String) throws(RuleError) {
        let (body, kind) = TrafficKind.split(text)
        let (bindText, portText) =
            body.contains(":") ? try AllowRule.split(body) : (Substring(Self.defaultBind), Substring(body))
        if bindText == "*" {
            bind = nil
        } else if let address = WireHost(String(bindText)), address != .name(Array(bindText.utf8)) {
            bind = address.text
        } else {
            throw RuleError(text: text, reason: "the bind address must be an IP address or *")
        }
        ports = try AllowRule.parsePorts(portText, in: text)
        kinds = kind.map { [$0] } ?? Set(TrafficKind.allCases)
        description = text
    }

    /// Whether a local agent may have this agent listen on `address`, which must be an address literal, for
    /// `kind`.
    func allows(_ address: Endpoint, kind: TrafficKind) -> Bool {
        guard kinds.contains(kind), ports.contains(address.port), let host = WireHost(address.host) else {
            return false
        }
        if case .name = host { return false }
        return bind == nil || bind == host.text
    }
}
