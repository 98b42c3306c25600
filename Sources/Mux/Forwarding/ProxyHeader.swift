/// Which version of the PROXY protocol header an agent sends its targets (`--proxy-protocol`).
public enum ProxyProtocolVersion: String, Sendable, CaseIterable {
    /// The text form: one line, `PROXY TCP4 <source> <destination> <source port> <destination port>\r\n`.
    case v1
    /// The binary form, which servers parse without scanning for a line end.
    case v2
}

/// The PROXY protocol (HAProxy's `proxy-protocol.txt`) header a target is sent before the stream's first byte,
/// so that a server behind the tunnel sees the client's own address, as it would behind HAProxy or nginx.
/// Pure: it only builds bytes.
package enum ProxyHeader {
    /// The 12 bytes every version 2 header starts with.
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// The header for a client from `origin`; with no origin, the form that says the source is unknown (v1
    /// `UNKNOWN`, v2 `LOCAL`), after which the server uses the connection's own addresses.
    package static func encode(_ origin: StreamOrigin?, version: ProxyProtocolVersion) -> [UInt8] {
        switch version {
        case .v1: Array(v1Line(origin).utf8)
        case .v2: v2Bytes(origin)
        }
    }

    private static func v1Line(_ origin: StreamOrigin?) -> String {
        guard let origin else { return "PROXY UNKNOWN\r\n" }
        let family = origin.source.isIPv4 ? "TCP4" : "TCP6"
        let (source, destination) = (origin.source, origin.destination)
        return "PROXY \(family) \(source.host) \(destination.host) \(source.port) \(destination.port)\r\n"
    }

    private static func v2Bytes(_ origin: StreamOrigin?) -> [UInt8] {
        guard let origin else { return v2Signature + [0x20, 0x00, 0x00, 0x00] }  // LOCAL, UNSPEC, no addresses
        let (source, destination) = (origin.source, origin.destination)
        let addresses = source.bytes + destination.bytes + bigEndian(source.port) + bigEndian(destination.port)
        let family: UInt8 = source.isIPv4 ? 0x11 : 0x21  // TCP over IPv4, TCP over IPv6
        return v2Signature + [0x21, family] + bigEndian(UInt16(addresses.count)) + addresses
    }

    private static func bigEndian(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
}

/// A PROXY protocol version 2 header arriving in pieces from a trusted load balancer, ahead of an agent's
/// hello. Reads exactly the header and nothing after it, and buffers at most `Limits.maxProxyHeaderBody` bytes
/// past its fixed part. Pure: the caller reads the socket.
package struct ProxyHeaderReader: Sendable {
    /// What the bytes so far amount to.
    package enum Progress: Equatable, Sendable {
        /// More bytes are needed: `missing` of them.
        case incomplete
        /// Not a version 2 header this reader accepts; `reason` says why.
        case rejected(reason: String)
        /// A whole header: the client's origin, or `nil` when the balancer speaks for itself (a `LOCAL` health
        /// check) or names no TCP address, so that the connection's own address stands.
        case complete(StreamOrigin?)
    }

    private static let fixedSize = 16
    private var received: [UInt8] = []
    private var bodySize: Int?

    package init() {}

    /// The bytes to read next: the rest of the fixed part, then the rest of the address block.
    package var missing: Int { Self.fixedSize + (bodySize ?? 0) - received.count }

    /// Adds `bytes` (at most `missing` of them) and checks what is complete.
    package mutating func append(_ bytes: ArraySlice<UInt8>) -> Progress {
        precondition(bytes.count <= missing, "read past the PROXY header")
        received += bytes
        if bodySize == nil && received.count >= Self.fixedSize {
            guard Array(received[..<12]) == ProxyHeader.v2Signature else {
                return .rejected(reason: "no PROXY v2 signature")
            }
            guard received[12] >> 4 == 2, received[12] & 0x0F <= 1 else {
                return .rejected(reason: "PROXY version/command byte \(received[12])")
            }
            let size = Int(received[14]) << 8 | Int(received[15])
            guard size <= Limits.maxProxyHeaderBody else {
                return .rejected(reason: "a PROXY v2 address block of \(size) bytes")
            }
            bodySize = size
        }
        guard missing == 0 else { return .incomplete }
        return complete()
    }

    private func complete() -> Progress {
        let isProxy = received[12] & 0x0F == 1
        let body = received[Self.fixedSize...]
        let addressSize: Int
        switch received[13] {
        case 0x11: addressSize = 4  // TCP over IPv4
        case 0x21: addressSize = 16  // TCP over IPv6
        default: return .complete(nil)  // UNSPEC, UDP or a UNIX socket: no TCP address to take
        }
        guard isProxy else { return .complete(nil) }
        guard body.count >= 2 * addressSize + 4 else {
            return .rejected(reason: "a PROXY v2 address block of \(body.count) bytes for its family")
        }
        let start = body.startIndex
        let ports = start + 2 * addressSize
        func port(at index: Int) -> UInt16 { UInt16(body[index]) << 8 | UInt16(body[index + 1]) }
        let source = StreamOrigin.Address(bytes: Array(body[start..<start + addressSize]), port: port(at: ports))
        let destination = StreamOrigin.Address(
            bytes: Array(body[start + addressSize..<ports]), port: port(at: ports + 2))
        return .complete(StreamOrigin(source: source, destination: destination))
    }
}
