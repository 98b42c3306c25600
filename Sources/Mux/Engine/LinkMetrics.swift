import CoreMetrics

/// What a link and its streams count, as metrics of whoever runs the link. Counting is lock-free: the
/// handlers are the metrics backend's.
struct LinkMetrics: Sendable {
    /// Streams established (their OPEN answered OPEN_OK), in either direction.
    let streamsOpened: Counter
    /// How long the streams this side opened waited for their OPEN's answer.
    let streamOpenTime: Timer
    /// Payload bytes on their way to targets: read from clients, or written to targets.
    let bytesToTarget: Counter
    /// Payload bytes on their way to clients: read from targets, or written to clients.
    let bytesToClient: Counter
    /// What the link's flows count (the agent's, shared by all its links).
    let datagrams: DatagramMetrics
    /// Counts an established stream that ended with a reset for the reason given.
    let recordReset: @Sendable (ResetReason) -> Void
    /// This link's round-trip time in seconds, as PING last measured it.
    let roundTrip: Gauge
    /// Bytes this link's connections sent and received on the wire, sealed and framed.
    let bytesSent: Counter
    let bytesReceived: Counter
    /// 1 while the link lives, labelled with the key it authenticated with.
    let info: Gauge
    /// Lets go of the link's own metrics (not the agent's it shares): the link has ended. Its agent removes them
    /// once no link uses them (a local agent's next link on the same slot takes the same labels while the one
    /// before may still be draining).
    let release: @Sendable () -> Void
}

/// Where a stream counts its payload bytes besides the agent's totals: its forward's counters.
struct StreamCounters: Sendable {
    /// Bytes read from the client, on their way to the target.
    let toTarget: Counter
    /// Bytes written to the client, from the target.
    let toClient: Counter

    /// Counts `count` bytes a stream read from its connection: its client's on the side that opened it, its
    /// target's on the other.
    func read(_ count: Int, isOpener: Bool) {
        (isOpener ? toTarget : toClient).increment(by: count)
    }

    /// Counts `count` bytes a stream wrote to its connection.
    func written(_ count: Int, isOpener: Bool) {
        (isOpener ? toClient : toTarget).increment(by: count)
    }
}
