/// The client hellos answered recently, so that a recorded hello replayed within the clock-skew window gets no
/// answer. A value type with no lock: its owner serialises access.
///
/// Only authentic hellos (made with the PSK) are ever inserted, so an attacker without the key cannot fill it;
/// entries leave once their timestamp is outside the window, where the clock check refuses them anyway.
public struct HelloReplayCache: Sendable {
    /// Entries beyond which new hellos are refused rather than old ones forgotten (fail closed). 100,000
    /// handshakes in 4 minutes is far beyond any deployment; each entry is about 100 bytes.
    public static let capacity = 100_000

    private var seen: [HelloIdentity: UInt64] = [:]

    /// An empty cache.
    public init() {}

    /// Records `identity` and returns `true` if it was not seen before; returns `false` for a replay, or when
    /// the cache is full of hellos that are all still within the window.
    /// `nowMillis` is the clock in Unix milliseconds.
    public mutating func admit(_ identity: HelloIdentity, nowMillis now: UInt64) -> Bool {
        if seen.count >= Self.capacity { forgetExpired(now: now) }
        guard seen[identity] == nil, seen.count < Self.capacity else { return false }
        seen[identity] = identity.sentAt
        if seen.count % 1024 == 0 { forgetExpired(now: now) }
        return true
    }

    /// Hellos remembered now.
    public var count: Int { seen.count }

    private mutating func forgetExpired(now: UInt64) {
        let window = UInt64(ServerHandshake.maximumClockSkew) * 1000
        seen = seen.filter { $0.value &+ window >= now }
    }
}
