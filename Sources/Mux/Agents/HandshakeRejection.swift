import Crypto

/// Why the remote agent closed a connection before it authenticated. The peer is told none of these: every
/// one ends in the same silent close.
package enum HandshakeRejection: CaseIterable, Sendable, CustomStringConvertible {
    /// No complete hello by the connection's deadline, or the peer closed partway through one.
    case silent
    /// The hello did not verify under any of the agent's keys: another key, another protocol version, or not
    /// a tcptunnel agent at all.
    case notAuthentic
    /// The hello verified but was stamped outside the clock window, or before this agent started.
    case staleClock
    /// The hello verified but was answered before: a recording played back.
    case replayed
    /// Dropped to make room while the pending table was full, or its source was at its cap: a flood.
    case shed
    /// The peer closed without sending a byte (or, from a trusted balancer, a byte past its PROXY header): a
    /// load balancer's health check, or a port scan.
    case closedWithoutData
    /// A connection from an `--accept-proxy-from` address did not start with a PROXY v2 header.
    case badProxyHeader

    /// The rejection a failed hello check stands for.
    init(_ error: CryptoError) {
        switch error {
        case .clockSkew, .sentBeforeStart: self = .staleClock
        default: self = .notAuthentic
        }
    }

    /// Whether it is also a failed handshake: all but health checks and connections shed under a flood.
    var isFailure: Bool { self != .closedWithoutData && self != .shed }

    /// The reason as a Prometheus label value.
    var metricLabel: String {
        switch self {
        case .silent: "silent"
        case .notAuthentic: "not_authentic"
        case .staleClock: "stale_clock"
        case .replayed: "replayed"
        case .shed: "shed"
        case .closedWithoutData: "closed_without_data"
        case .badProxyHeader: "bad_proxy_header"
        }
    }

    package var description: String {
        switch self {
        case .silent: "silent"
        case .notAuthentic: "not authentic"
        case .staleClock: "stale clock"
        case .replayed: "replayed"
        case .shed: "shed"
        case .closedWithoutData: "closed without data"
        case .badProxyHeader: "no PROXY v2 header"
        }
    }

    /// What an operator can do about it, said once in each summary that counts it.
    var hint: String {
        switch self {
        case .silent: "scanners, or peers that are not tcptunnel"
        case .notAuthentic: "another key or protocol version: compare key fingerprints and versions"
        case .staleClock:
            "a clock off by over \(ServerHandshake.maximumClockSkew) s, or behind this agent's start: check NTP"
        case .replayed: "a recorded hello sent again"
        case .shed: "a flood filled --max-pending or a source's --max-pending-per-source"
        case .closedWithoutData: "health checks"
        case .badProxyHeader:
            "an --accept-proxy-from balancer that does not send-proxy-v2, or a host in its block that is not one"
        }
    }
}

/// Counts the connections turned away before authentication and says so in one line per interval instead of
/// one per connection, so a flood cannot flood the log. The first line after a quiet interval is written at
/// once, so a single misconfigured agent is reported without delay. Owned by the gate thread.
struct RejectionReport {
    private let intervalNanoseconds: UInt64
    /// Whether the connections counted go to the cover (TLS transport) rather than being closed.
    private let relaysToCover: Bool
    private var counts: [HandshakeRejection: Int] = [:]
    private var lastLine: UInt64?

    init(interval seconds: Double, relaysToCover: Bool = false) {
        intervalNanoseconds = UInt64(seconds * 1e9)
        self.relaysToCover = relaysToCover
    }

    /// Counts one connection; health checks are counted by metrics and debug lines only.
    mutating func record(_ reason: HandshakeRejection) {
        if reason != .closedWithoutData { counts[reason, default: 0] += 1 }
    }

    /// When the next line may be due, if anything is waiting to be said.
    var nextLineDue: UInt64? {
        counts.isEmpty ? nil : (lastLine.map { $0 + intervalNanoseconds } ?? 0)
    }

    /// The summary line, if one is due at `now` (monotonic nanoseconds); starts the next interval.
    mutating func line(now: UInt64, pending: Int) -> String? {
        guard let due = nextLineDue, now >= due else { return nil }
        return flush(now: now, pending: pending)
    }

    /// The summary of what is counted and not yet said, due or not (the agent is stopping); nil if nothing is.
    mutating func finalLine(now: UInt64, pending: Int) -> String? {
        nextLineDue == nil ? nil : flush(now: now, pending: pending)
    }

    private mutating func flush(now: UInt64, pending: Int) -> String {
        let since = lastLine.map { " in the last \(Int((Double(now - $0) / 1e9).rounded())) s" } ?? ""
        let total = counts.values.reduce(0, +)
        let parts = HandshakeRejection.allCases.compactMap { reason in
            counts[reason].map { "\($0) \(reason) (\(reason.hint))" }
        }
        counts = [:]
        lastLine = now
        let outcome = relaysToCover ? " (relayed to the cover)" : ""
        return "turned away \(total) unauthenticated connection\(total == 1 ? "" : "s")\(since)\(outcome): "
            + parts.joined(separator: ", ") + "; \(pending) pending"
    }
}
