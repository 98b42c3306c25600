import Glibc

/// One `--allow` rule of a remote agent: a host pattern and a port range that local agents may ask to reach.
///
/// A name rule (`db.internal:5432`, `*.example.com:443`) matches the name a stream asks for; an address or
/// network rule (`10.1.2.3:22`, `10.0.0.0/8:22`, `[::1]:80`) matches each address actually dialled, so a name
/// cannot reach an address by resolving to it. `*` as the host matches any name and any address. A rule covers
/// TCP and UDP alike, unless it ends in `/tcp` or `/udp`.
public struct AllowRule: Sendable, Hashable, CustomStringConvertible {
    enum HostPattern: Hashable, Sendable {
        /// `*`: every name and every address.
        case any
        /// One name, lower-cased, without a trailing dot.
        case name(String)
        /// `*.example.com`: every name ending in `.example.com` (not `example.com` itself).
        case nameSuffix(String)
        /// An address (a /32 or /128) or a CIDR block.
        case network(IPNetwork)
    }

    let host: HostPattern
    let ports: ClosedRange<UInt16>
    /// What it lets through: TCP streams, UDP flows, or both.
    let kinds: Set<TrafficKind>
    /// The rule as written.
    public let description: String

    /// Parses `HOST:PORTS[/tcp|/udp]`: HOST is a name, `*.domain`, an address, a CIDR block (IPv6 ones in
    /// brackets, like `[fd00::/8]`) or `*`; PORTS is a port, `LOW-HIGH` or `*`; without a suffix, both kinds.
    public init(parsing text: String) throws(RuleError) {
        let (body, kind) = TrafficKind.split(text)
        let (hostText, portText) = try Self.split(body)
        ports = try Self.parsePorts(portText, in: text)
        host = try Self.parseHost(hostText, in: text)
        kinds = kind.map { [$0] } ?? Set(TrafficKind.allCases)
        description = text
    }

    /// The rule that allows exactly `endpoint` (the remote agent's own `--target`), for TCP: it is where the
    /// local agent's `--listen` clients go.
    init(exactly endpoint: Endpoint) {
        if let network = IPNetwork(address: endpoint.host) {
            host = .network(network)
        } else {
            host = .name(Self.normalisedName(endpoint.host))
        }
        ports = endpoint.port...endpoint.port
        kinds = [.tcp]
        description = "\(endpoint) (--target)"
    }

    /// Whether a stream that names `name` and `port` is allowed by name.
    func allows(name: String, port: UInt16) -> Bool {
        guard ports.contains(port) else { return false }
        let name = Self.normalisedName(name)
        switch host {
        case .any: return true
        case .name(let allowed): return name == allowed
        case .nameSuffix(let suffix): return name.hasSuffix(suffix) && name.count > suffix.count
        case .network: return false
        }
    }

    /// Whether dialling `address` (4 or 16 bytes) at `port` is allowed.
    func allows(address: [UInt8], port: UInt16) -> Bool {
        guard ports.contains(port) else { return false }
        switch host {
        case .any: return true
        case .name, .nameSuffix: return false
        case .network(let network): return network.contains(address)
        }
    }

    /// Whether this rule could allow some address at `port`.
    func allowsAddresses(port: UInt16) -> Bool {
        guard ports.contains(port) else { return false }
        switch host {
        case .any, .network: return true
        case .name, .nameSuffix: return false
        }
    }

    static func normalisedName(_ name: String) -> String {
        let lower = name.lowercased()
        return lower.hasSuffix(".") ? String(lower.dropLast()) : lower
    }

    static func split(_ text: String) throws(RuleError) -> (host: Substring, ports: Substring) {
        switch Endpoint.splitHost(text) {
        case .success(let parts): return (parts.host, parts.rest)
        case .failure(.noColon): throw RuleError(text: text, reason: "expected HOST:PORTS")
        case .failure(.unbracketedIPv6):
            throw RuleError(text: text, reason: "an IPv6 address or block is written in brackets: [ADDRESS]:PORTS")
        }
    }

    static func parsePorts(_ text: Substring, in rule: String) throws(RuleError) -> ClosedRange<UInt16> {
        if text == "*" { return 1...UInt16.max }
        let bounds = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(bounds.count), let low = UInt16(bounds[0]), let high = UInt16(bounds[bounds.count - 1]),
            low >= 1, low <= high
        else {
            throw RuleError(text: rule, reason: "the ports must be a port, LOW-HIGH or *, from 1 to 65535")
        }
        return low...high
    }

    private static func parseHost(_ text: Substring, in rule: String) throws(RuleError) -> HostPattern {
        if text == "*" { return .any }
        if text.contains("/") {
            guard let network = IPNetwork(cidr: String(text)) else {
                throw RuleError(text: rule, reason: "a network is written ADDRESS/PREFIX-LENGTH, e.g. 10.0.0.0/8")
            }
            return .network(network)
        }
        if let network = IPNetwork(address: String(text)) { return .network(network) }
        let isSuffix = text.hasPrefix("*.")
        let name = isSuffix ? text.dropFirst(2) : text
        guard WireHost.isValidName(name.utf8), !name.contains("*") else {
            throw RuleError(text: rule, reason: "the host must be a name, *.domain, an address, a network or *")
        }
        let normalised = normalisedName(String(name))
        return isSuffix ? .nameSuffix("." + normalised) : .name(normalised)
    }
}

/// A rule (`--allow`, `--allow-listen`) that could not be parsed, and why.
public struct RuleError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The rule as given.
    public let text: String
    /// What is wrong with it.
    public let reason: String

    public var description: String { "bad rule '\(text)': \(reason)" }
}

/// An IPv4 or IPv6 block: an address and how many of its leading bits a member shares.
struct IPNetwork: Hashable, Sendable {
    let prefix: [UInt8]
    let prefixLength: Int

    /// A single address, as a /32 or /128.
    init?(address: String) {
        guard let bytes = IPNetwork.bytes(of: address) else { return nil }
        prefix = bytes
        prefixLength = bytes.count * 8
    }

    /// `ADDRESS/LENGTH`. Bits beyond the length must be zero, so that a typo like 10.0.0.1/8 is caught.
    init?(cidr: String) {
        let parts = cidr.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let bytes = IPNetwork.bytes(of: String(parts[0])), let length = Int(parts[1]),
            (0...bytes.count * 8).contains(length)
        else { return nil }
        prefix = bytes
        prefixLength = length
        guard IPNetwork.masked(bytes, length) == bytes else { return nil }
    }

    /// Whether `address` (4 or 16 bytes) is in the block. An IPv4-mapped IPv6 address counts as its IPv4
    /// address, so `::ffff:127.0.0.1` cannot pass for something other than 127.0.0.1.
    func contains(_ address: [UInt8]) -> Bool {
        let address = WireHost.unmapped(address)
        guard address.count == prefix.count else { return false }
        return IPNetwork.masked(address, prefixLength) == IPNetwork.masked(prefix, prefixLength)
    }

    /// The 4 or 16 bytes of an address literal (IPv4-mapped IPv6 addresses as their IPv4 bytes).
    static func bytes(of text: String) -> [UInt8]? {
        switch WireHost(text) {
        case .ipv4(let bytes): bytes
        case .ipv6(let bytes): WireHost.unmapped(bytes)
        case .name, nil: nil
        }
    }

    private static func masked(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bits = min(8, max(0, length - index * 8))
            return bits == 0 ? 0 : byte & UInt8(truncatingIfNeeded: 0xff << (8 - bits))
        }
    }
}
