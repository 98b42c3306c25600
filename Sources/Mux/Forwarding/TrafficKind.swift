/// What a forward or a rule carries: TCP connections (streams) or UDP datagrams (flows).
public enum TrafficKind: String, Sendable, Hashable, CaseIterable {
    case tcp, udp

    /// Splits a trailing `/tcp` or `/udp` (as chisel writes it) off `text`: the rest, and the kind it names, or
    /// `nil` when it names none.
    static func split(_ text: String) -> (rest: String, kind: TrafficKind?) {
        for kind in allCases where text.hasSuffix("/\(kind.rawValue)") {
            return (String(text.dropLast(kind.rawValue.count + 1)), kind)
        }
        return (text, nil)
    }
}
