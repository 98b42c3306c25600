/// One `--allow-listen` rule of a remote agent: an address and port range where local agents may ask it to
/// listen for their reverse forwards (`-R`).
public struct ListenRule: Sendable, Hashable, CustomStringConvertible {
    /// The address to bind, in canonical form, or `nil` for `*` (any address).
    let bind: String?
    let ports: ClosedRange<UInt16>
    /// The rule as written.
    public let description: String

    /// The bind address a rule without one allows: loopback only, so that exposing a port to the network is
    /// always asked for explicitly, as ssh's GatewayPorts does.
    public static let defaultBind = "127.0.0.1"

    /// Parses `[BIND:]PORT[-PORT]`. BIND is an address (IPv6 in brackets) or `*`, and defaults to 127.0.0.1.
    public init(parsing text: String) throws(RuleError) {
        let (bindText, portText) =
            text.contains(":") ? try AllowRule.split(text) : (Substring(Self.defaultBind), Substring(text))
        if bindText == "*" {
            bind = nil
        } else if let address = WireHost(String(bindText)), address != .name(Array(bindText.utf8)) {
            bind = address.text
        } else {
            throw RuleError(text: text, reason: "the bind address must be an IP address or *")
        }
        ports = try AllowRule.parsePorts(portText, in: text)
        description = text
    }

    /// Whether a local agent may have this agent listen on `address`, which must be an address literal.
    func allows(_ address: Endpoint) -> Bool {
        guard ports.contains(address.port), let host = WireHost(address.host) else { return false }
        if case .name = host { return false }
        return bind == nil || bind == host.text
    }
}
