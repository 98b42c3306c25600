/// Capped exponential backoff with jitter for reconnect attempts, so that many local agents cut off by the same
/// outage do not reconnect in lockstep.
enum Backoff {
    static let initialDelay = 0.25
    static let maximumDelay = 30.0

    static func next(after delay: Double) -> Double { min(delay * 2, maximumDelay) }

    /// `delay` spread uniformly over ±25 %.
    static func jittered(_ delay: Double) -> Double { delay * Double.random(in: 0.75...1.25) }

    /// A wait as logs show it: `187 ms`, `1.4 s`, `27 s`; the log says the wait the agent actually makes.
    static func format(_ delay: Double) -> String {
        if delay < 1 { return "\(Int((delay * 1000).rounded())) ms" }
        if delay < 10 { return "\((delay * 10).rounded() / 10) s" }
        return "\(Int(delay.rounded())) s"
    }
}
