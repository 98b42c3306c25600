/// The tunables of one link and its streams. Agents make them from their `TunnelSettings`, which documents
/// each one and validates its range.
struct LinkSettings: Sendable, Equatable {
    /// The receive window each stream starts with and grows back to, in bytes.
    var streamWindow: Int
    /// The largest receive window a stream may auto-tune to, in bytes.
    var maxStreamWindow: Int
    /// Received bytes all streams of the link together may hold unconsumed.
    var linkReceiveBudget: Int
    /// Bytes of DATA frames the writer queue holds before stream threads wait for it.
    var outboundQueueBytes: Int
    /// Seconds of silence after which the link sends PING.
    var keepaliveInterval: Double
    /// Seconds without receiving, or without the peer taking a byte, after which the link is dead.
    var deadLinkTimeout: Double
    /// Seconds a stream's connection may accept no bytes before the stream is reset; 0 waits forever.
    var writeTimeout: Double
    /// Seconds a stream may carry no byte either way before it is reset; 0 never.
    var idleTimeout: Double
    /// Seconds a link that lost its connection waits for its session to continue on a new one before its streams
    /// are reset; 0 ends the link with its connection.
    var resumeTimeout: Double
}
