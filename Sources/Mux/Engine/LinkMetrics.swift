import CoreMetrics

/// What a link and its streams count, as metrics of whoever runs the link. Counting is lock-free: the
/// handlers are the metrics backend's.
struct LinkMetrics: Sendable {
    /// Streams established (their OPEN answered OPEN_OK), in either direction.
    let streamsOpened: Counter
    /// Payload bytes on their way to targets: read from clients, or written to targets.
    let bytesToTarget: Counter
    /// Payload bytes on their way to clients: read from targets, or written to clients.
    let bytesToClient: Counter
    /// What the link's flows count (the agent's, shared by all its links).
    let datagrams: DatagramMetrics
    /// This link's round-trip time in seconds, as PING last measured it; the link destroys it when it ends.
    let roundTrip: Gauge
}
