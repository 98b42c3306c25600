/// The header a SOCKS5 client puts before each datagram it sends through a UDP association, and the server before
/// each reply (RFC 1928 §7): `RSV (2 bytes, 0) ‖ FRAG (1) ‖ ATYP ‖ DST.ADDR ‖ DST.PORT`, then the data.
package enum SocksDatagram {
    /// Why a client's datagram was not taken.
    package enum Refusal: Error, Equatable {
        /// FRAG is not 0: a fragment, which this server drops, as the RFC allows a server that does not reassemble.
        case fragmented
        /// The header is cut short, or its reserved bytes or address type are not what the RFC allows.
        case malformed
    }

    /// The target a client's datagram names, and where its data starts in `bytes`.
    package static func parse(_ bytes: UnsafeRawBufferPointer) throws(Refusal) -> (target: Endpoint, dataOffset: Int) {
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0 else { throw .malformed }
        guard bytes[2] == 0 else { throw .fragmented }
        let host: WireHost
        var offset = 4
        switch bytes[3] {
        case 1, 4:
            let length = bytes[3] == 1 ? 4 : 16
            guard bytes.count >= offset + length + 2 else { throw .malformed }
            let address = Array(bytes[offset..<offset + length])
            host = length == 4 ? .ipv4(address) : .ipv6(address)
            offset += length
        case 3:
            guard bytes.count >= 5 else { throw .malformed }
            let length = Int(bytes[4])
            offset = 5
            guard bytes.count >= offset + length + 2 else { throw .malformed }
            let name = Array(bytes[offset..<offset + length])
            guard WireHost.isValidName(name), case .name = WireHost(String(decoding: name, as: UTF8.self)) else {
                throw .malformed
            }
            host = .name(name)
            offset += length
        default: throw .malformed
        }
        let port = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        return (Endpoint(host: host.text, port: port), offset + 2)
    }

    /// The header of a reply that came from `source` (the target the client named), to put before its data.
    package static func header(from source: Endpoint) -> [UInt8] {
        [0, 0, 0] + address(source)
    }

    /// `endpoint` as SOCKS5 writes an address, in a reply or a datagram's header: `ATYP ‖ ADDR ‖ PORT`.
    static func address(_ endpoint: Endpoint) -> [UInt8] {
        let host: [UInt8] =
            switch WireHost(endpoint.host) {
            case .ipv4(let bytes): [1] + bytes
            case .ipv6(let bytes): [4] + bytes
            case .name(let bytes): [3, UInt8(bytes.count)] + bytes
            case nil: [1, 0, 0, 0, 0]
            }
        return host + [UInt8(endpoint.port >> 8), UInt8(endpoint.port & 0xff)]
    }
}
