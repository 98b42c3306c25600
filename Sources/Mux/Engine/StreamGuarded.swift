/// A stream's mutable state, in one place so that one lock (the stream's `condition`) visibly guards all of it.
struct StreamGuarded {
    /// The connection the stream carries, while the machine says it is connected.
    var channel: (any ByteChannel)?
    /// Everything the stream decides.
    var machine: StreamMachine
    /// The counters of the forward the stream belongs to, if it is counted apart: given when it is opened or
    /// accepted, before its uplink starts.
    var forwardBytes: StreamCounters?
}

/// What a stream carried, and when it last carried anything (for the idle timeout).
struct StreamTraffic {
    private(set) var bytesUp = 0
    private(set) var bytesDown = 0
    /// When a byte last moved in either direction.
    private(set) var lastActivity = ContinuousClock.now

    /// `count` bytes read from the connection and sent to the peer.
    mutating func recordUp(_ count: Int) {
        bytesUp += count
        lastActivity = .now
    }

    /// `count` bytes from the peer written to the connection.
    mutating func recordDown(_ count: Int) {
        bytesDown += count
        lastActivity = .now
    }

    /// The stream's totals, for its closing log line.
    var summary: String { "up \(bytesUp) B, down \(bytesDown) B" }
}
