import Glibc

/// Where a new stream goes, as its OPEN frame names it (docs/PROTOCOL.md, "Targets").
package enum StreamTarget: Hashable, Sendable, CustomStringConvertible {
    /// Local → remote: the remote agent's own `--target`; what the plain `--listen` mode asks for.
    case defaultTarget
    /// Local → remote: this host (an address, or a name the remote agent resolves) and port, if the remote
    /// agent's rules allow it.
    case endpoint(Endpoint)
    /// Remote → local: a client of the reverse forward the local agent registered under this id; the local
    /// agent alone knows, and chooses, where it goes.
    case reverseForward(UInt32)

    package var description: String {
        switch self {
        case .defaultTarget: "the default target"
        case .endpoint(let endpoint): "\(endpoint)"
        case .reverseForward(let id): "reverse forward \(id)"
        }
    }
}

/// How a host travels on the wire: an IPv4 or IPv6 address in binary, or a DNS name.
package enum WireHost: Equatable, Sendable {
    case ipv4([UInt8])
    case ipv6([UInt8])
    case name([UInt8])

    /// The longest DNS name (RFC 1035 counts 255 octets).
    package static let maxNameLength = 255

    /// The wire form of `host`, or `nil` if it is neither an address nor a DNS name (see `isValidName`).
    package init?(_ host: String) {
        var address4 = in_addr()
        var address6 = in6_addr()
        if inet_pton(AF_INET, host, &address4) == 1 {
            self = .ipv4(withUnsafeBytes(of: &address4) { Array($0) })
        } else if inet_pton(AF_INET6, host, &address6) == 1 {
            self = .ipv6(withUnsafeBytes(of: &address6) { Array($0) })
        } else if Self.isValidName(host.utf8) {
            self = .name(Array(host.utf8))
        } else {
            return nil
        }
    }

    /// The host as text: the address in its canonical form, or the name.
    package var text: String {
        switch self {
        case .ipv4(let bytes): bytes.withUnsafeBytes { addressText(AF_INET, $0) }
        case .ipv6(let bytes): bytes.withUnsafeBytes { addressText(AF_INET6, $0) }
        case .name(let bytes): String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Whether `bytes` is something a resolver can be asked for: 1 to 255 letters, digits, `-`, `_` and `.`.
    /// Anything else (spaces, control bytes, `%`, non-ASCII) is refused, so that a name read from a client or a
    /// peer is safe to log and to hand to getaddrinfo.
    package static func isValidName<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool {
        guard !bytes.isEmpty, bytes.count <= maxNameLength else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                true
            default: false
            }
        }
    }
}
