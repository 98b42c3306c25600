/// The Great Firewall's published detector for fully encrypted traffic, applied to the payload of the first TCP
/// data packet a client sends. Such a packet is *exempt* (never blocked) if any of five exemptions holds; otherwise
/// it is a *blocking candidate* (the censor then blocks a fraction of the candidates).
///
/// Two rule sets, which differ in small details:
/// - `paper`: Wu et al., "How the Great Firewall of China Detects and Blocks Fully Encrypted Traffic", USENIX
///   Security 2023, Algorithm 1, with Ex1's bounds checked against the artifact's raw data (an average of 3.40 set
///   bits per byte passes, 3.42 is blocked), so computed exactly in integers.
/// - `openGFW`: apernet/OpenGFW's `analyzer/tcp/fet.go`, which computes in `float32` and has its own Ex5.
///
/// "Printable" means 0x20...0x7e.
enum FullyEncryptedDetector {
    enum RuleSet: Sendable, CaseIterable {
        case paper, openGFW
    }

    enum Exemption: Sendable, CaseIterable, CustomStringConvertible {
        /// The average number of set bits per byte is ≤ 3.4 or ≥ 4.6 (random bytes average 4).
        case ex1
        /// The first six bytes are all printable.
        case ex2
        /// More than half of the bytes are printable.
        case ex3
        /// More than 20 contiguous bytes are printable.
        case ex4
        /// The packet starts like TLS or HTTP.
        case ex5

        var description: String {
            switch self {
            case .ex1: "Ex1: average popcount per byte <= 3.4 or >= 4.6"
            case .ex2: "Ex2: first six bytes printable"
            case .ex3: "Ex3: more than half of the bytes printable"
            case .ex4: "Ex4: more than 20 contiguous printable bytes"
            case .ex5: "Ex5: TLS or HTTP prefix"
            }
        }
    }

    /// A first TCP segment on a real path (Ethernet MTU 1500, less 40 bytes of IPv4 and TCP headers) carries at
    /// most this many bytes, and the censor sees only that segment: callers judging a longer first write apply the
    /// rules to its first `min(count, segmentSize)` bytes too.
    static let segmentSize = 1460

    /// The exemptions that hold for the first data packet `p`, in order. `p` must not be empty: a packet without
    /// payload is not evaluated (OpenGFW skips empty data), so asking about one is a programming error.
    static func exemptions(_ p: [UInt8], under rules: RuleSet) -> [Exemption] {
        precondition(!p.isEmpty, "the detector judges a data packet, which has at least one byte")
        let bits = p.reduce(0) { $0 + $1.nonzeroBitCount }
        let printable = p.count(where: isPrintable)
        var held: [Exemption] = []

        switch rules {
        case .paper:
            // bits / count <= 3.4 and >= 4.6, exactly: 3.4 = 17/5 and 4.6 = 23/5.
            if 5 * bits <= 17 * p.count || 5 * bits >= 23 * p.count { held.append(.ex1) }
        case .openGFW:
            let average = Float(bits) / Float(p.count)
            if average <= 3.4 || average >= 4.6 { held.append(.ex1) }
        }
        if p.count >= 6 && p.prefix(6).allSatisfy(isPrintable) { held.append(.ex2) }
        switch rules {
        case .paper: if 2 * printable > p.count { held.append(.ex3) }
        case .openGFW: if Float(printable) / Float(p.count) > 0.5 { held.append(.ex3) }
        }
        if longestPrintableRun(p) > 20 { held.append(.ex4) }
        if startsLikeTLSOrHTTP(p, under: rules) { held.append(.ex5) }
        return held
    }

    /// Whether no exemption holds for the first data packet `p` (not empty), so that the censor may block it.
    static func isBlockingCandidate(_ p: [UInt8], under rules: RuleSet) -> Bool {
        exemptions(p, under: rules).isEmpty
    }

    static func isPrintable(_ byte: UInt8) -> Bool { (0x20...0x7e).contains(byte) }

    static func longestPrintableRun(_ p: [UInt8]) -> Int {
        var longest = 0
        var current = 0
        for byte in p {
            current = isPrintable(byte) ? current + 1 : 0
            longest = max(longest, current)
        }
        return longest
    }

    /// Ex5. `paper`: a TLS record header (content type handshake 0x16 or application data 0x17, version 0x03 0x00
    /// through 0x03 0x09), or one of the HTTP requests "GET ", "PUT ", "POST ", "HEAD ". `openGFW`: a TLS handshake
    /// record of version 0x03 0x00 through 0x03 0x03, or the first three letters of an HTTP method.
    private static func startsLikeTLSOrHTTP(_ p: [UInt8], under rules: RuleSet) -> Bool {
        guard p.count >= 3 else { return false }
        switch rules {
        case .paper:
            if [0x16, 0x17].contains(p[0]) && p[1] == 0x03 && p[2] <= 0x09 { return true }
            return ["GET ", "PUT ", "POST ", "HEAD "].contains { p.starts(with: $0.utf8) }
        case .openGFW:
            if p[0] == 0x16 && p[1] == 0x03 && p[2] <= 0x03 { return true }
            let methods = ["GET", "HEA", "POS", "PUT", "DEL", "CON", "OPT", "TRA", "PAT"]
            return methods.contains { p.starts(with: $0.utf8) }
        }
    }
}
