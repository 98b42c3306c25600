/// Where a stream's client connected from and to, as the agent that accepted the connection saw it: what a
/// load balancer's PROXY protocol header tells a server. Carried in OPEN (docs/PROTOCOL.md §5.2), so that the
/// agent that connects the target can pass it on (`--proxy-protocol`).
package struct StreamOrigin: Hashable, Sendable, CustomStringConvertible {
    /// One side of the client's connection: an IPv4 (4 bytes) or IPv6 (16 bytes) address and a port.
    package struct Address: Hashable, Sendable, CustomStringConvertible {
        /// 4 or 16 bytes, in network order.
        package let bytes: [UInt8]
        package let port: UInt16

        package init(bytes: [UInt8], port: UInt16) {
            precondition(bytes.count == 4 || bytes.count == 16, "an address is 4 or 16 bytes")
            self.bytes = bytes
            self.port = port
        }

        package var isIPv4: Bool { bytes.count == 4 }

        /// The address in its usual text form, without the port: `192.0.2.1`, `2001:db8::1`.
        package var host: String { WireHost(bytes: bytes).text }

        package var description: String { isIPv4 ? "\(host):\(port)" : "[\(host)]:\(port)" }

        /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack listener reports for an IPv4
        /// client) as the IPv4 address it stands for; any other address as it is.
        var unmapped: Address { Address(bytes: WireHost.unmapped(bytes), port: port) }
    }

    /// The client's address and port.
    package let source: Address
    /// The address and port the client connected to (the agent's listening socket).
    package let destination: Address

    /// The origin of a connection from `source` to `destination`, both in one family once IPv4-mapped addresses
    /// are read as IPv4; `nil` if they are not (no socket reports that).
    package init?(source: Address, destination: Address) {
        let (source, destination) = (source.unmapped, destination.unmapped)
        guard source.isIPv4 == destination.isIPv4 else { return nil }
        self.source = source
        self.destination = destination
    }

    package var description: String { "\(source) → \(destination)" }
}

extension WireHost {
    /// The wire form of a 4-byte IPv4 or 16-byte IPv6 address.
    init(bytes: [UInt8]) {
        self = bytes.count == 4 ? .ipv4(bytes) : .ipv6(bytes)
    }

    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket reports for an IPv4 peer) as the
    /// 4 bytes of the IPv4 address it stands for; any other address as it is.
    /// Allocates nothing for an address that is not mapped: the handshake gate calls it at every accept.
    static func unmapped(_ address: [UInt8]) -> [UInt8] {
        let isMapped =
            address.count == 16 && address[..<10].allSatisfy { $0 == 0 } && address[10] == 0xff && address[11] == 0xff
        return isMapped ? Array(address[12...]) : address
    }
}

/// The wire form of an origin (docs/PROTOCOL.md §5.2): a family byte (0 unknown, 1 IPv4, 4 IPv6, SOCKS5's
/// numbers as in targets), then source address ‖ u16 source port ‖ destination address ‖ u16 destination port.
enum OriginCoding {
    static func size(of origin: StreamOrigin?) -> Int {
        guard let origin else { return 1 }
        return 1 + 2 * (origin.source.bytes.count + 2)
    }

    static func write(_ origin: StreamOrigin?, to writer: inout PayloadWriter) {
        guard let origin else { return writer.append(TargetCoding.AddressType.defaultTarget.rawValue) }
        let type: TargetCoding.AddressType = origin.source.isIPv4 ? .ipv4 : .ipv6
        writer.append(type.rawValue)
        for address in [origin.source, origin.destination] {
            writer.append(address.bytes)
            writer.append(address.port)
        }
    }

    static func read(_ reader: inout PayloadReader) throws(FrameError) -> StreamOrigin? {
        let type = try reader.byte()
        let count: Int
        switch TargetCoding.AddressType(rawValue: type) {
        case .defaultTarget: return nil
        case .ipv4: count = 4
        case .ipv6: count = 16
        default: throw reader.malformed("unknown origin type \(type)")
        }
        let source = StreamOrigin.Address(bytes: try reader.bytes(count), port: try reader.uint16())
        let destination = StreamOrigin.Address(bytes: try reader.bytes(count), port: try reader.uint16())
        // A mapped address is sent as IPv4, so every origin has one wire form.
        guard source.unmapped == source, destination.unmapped == destination,
            let origin = StreamOrigin(source: source, destination: destination)
        else { throw reader.malformed("an IPv4-mapped origin address") }
        return origin
    }
}
