/// The load balancers a remote agent takes a PROXY v2 header from (`--accept-proxy-from`): a connection from
/// one of these addresses must start with the header, and the client it names stands for the connection in
/// logs and per-source limits. From any other address a header is just bytes that fail as a hello.
public struct TrustedBalancers: Sendable, Equatable {
    private let networks: [IPNetwork]
    /// The blocks as written.
    public let descriptions: [String]

    /// Parses addresses and CIDR blocks (`10.0.0.5`, `10.0.0.0/24`, `::1`, `fd00::/8`); none trusts no one.
    public init(parsing blocks: [String]) throws(RuleError) {
        var networks: [IPNetwork] = []
        for text in blocks {
            let bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
            guard let network = IPNetwork(cidr: bare) ?? IPNetwork(address: bare) else {
                throw RuleError(
                    text: text, reason: "expected an address or a CIDR block with no host bits (10.0.0.0/24, fd00::/8)")
            }
            networks.append(network)
        }
        self.networks = networks
        descriptions = blocks
    }

    /// Trusts no one: every connection speaks for itself.
    public static let none = TrustedBalancers(networks: [], descriptions: [])

    private init(networks: [IPNetwork], descriptions: [String]) {
        self.networks = networks
        self.descriptions = descriptions
    }

    /// Whether no balancer is trusted.
    public var isEmpty: Bool { networks.isEmpty }

    /// Whether a connection from `address` (4 or 16 bytes) must start with a PROXY v2 header.
    func contains(_ address: [UInt8]) -> Bool {
        networks.contains { $0.contains(address) }
    }
}
