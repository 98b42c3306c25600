/// Capped exponential backoff with jitter for reconnect attempts, so that many local agents cut off by the same
/// outage do not reconnect in lockstep.
enum Backoff {
    static let initialDelay = 0.25
    static let maximumDelay = 30.0

    static func next(after delay: Double) -> Double { min(delay * 2, maximumDelay) }

    /// `delay` spread uniformly over ±25 %.
    static func jittered(_ delay: Double) -> Double { delay * Double.random(in: 0.75...1.25) }

    static func format(_ delay: Double) -> String {
        delay < 1 ? "\(Int(delay * 1000)) ms" : "\(Int(delay)) s"
    }
}
