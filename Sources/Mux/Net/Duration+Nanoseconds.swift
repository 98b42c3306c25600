extension Duration {
    /// The whole nanoseconds in this duration.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// This duration in seconds, for calls that take them as a `Double`.
    package var inSeconds: Double { Double(nanoseconds) / 1e9 }
}
