/// What a forward or a rule carries: TCP connections (streams) or UDP datagrams (flows).
public enum TrafficKind: String, Sendable, Hashable, CaseIterable {
    case tcp, udp

    /// The IP protocol number (IANA) that names the kind on the wire, in LISTEN: 6 for TCP, 17 for UDP.
    var ipProtocol: UInt8 { self == .tcp ? 6 : 17 }

    /// The kind an IP protocol number names, or `nil` for another protocol.
    init?(ipProtocol: UInt8) {
        switch ipProtocol {
        case 6: self = .tcp
        case 17: self = .udp
        default: return nil
        }
    }

    /// Splits a trailing `/tcp` or `/udp` (as chisel writes it) off `text`: the rest, and the kind it names, or
    /// `nil` when it names none.
    static func split(_ text: String) -> (rest: String, kind: TrafficKind?) {
        for kind in allCases where text.hasSuffix("/\(kind.rawValue)") {
            return (String(text.dropLast(kind.rawValue.count + 1)), kind)
        }
        return (text, nil)
    }
}
