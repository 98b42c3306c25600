import Mux

/// The shape of a long network path: a round-trip time and, optionally, a bandwidth cap.
public struct PathShape: Sendable, Equatable {
    /// Round-trip time added by the path, in seconds (half of it each way).
    public var roundTripSeconds: Double
    /// The path's capacity in bytes per second each way; nil for no cap.
    public var bytesPerSecond: Double?

    public init(roundTripSeconds: Double, bytesPerSecond: Double?) {
        self.roundTripSeconds = roundTripSeconds
        self.bytesPerSecond = bytesPerSecond
    }
}

/// A TCP relay that behaves like a long path: every byte reaches the other side half a round trip
/// after it entered, no faster than the bandwidth cap, with at most `queueLimit` bytes in flight each
/// way (the path's buffer; beyond it the sender's TCP backs off, as at a router's full queue). Like a router,
/// it sends what is due at once: Nagle's algorithm is off on both of its sockets.
///
/// Per relayed connection and direction, a reader thread timestamps chunks into a queue and a writer
/// thread sends each when due; the two share the queue under its condition lock. Each socket is closed
/// by the last of its connection's four threads.
public final class LatencyRelay: Sendable {
    /// Where the relay listens.
    public let endpoint: Endpoint
    private let upstream: Endpoint
    private let shape: PathShape
    private let listener: Socket
    private let queueLimit: Int

    /// Listens on `endpoint` and relays each connection to `upstream` through a path of `shape`.
    public init(listeningOn endpoint: Endpoint, upstream: Endpoint, shape: PathShape) throws(BenchError) {
        do {
            listener = try Socket.listen(on: try endpoint.resolve(passive: true))
        } catch {
            throw BenchError("latency relay cannot listen on \(endpoint): \(error)")
        }
        self.endpoint = listener.localEndpoint
        self.upstream = upstream
        self.shape = shape
        // Two bandwidth-delay products of buffering (at least 4 MiB), as a generous router would have.
        let rate = shape.bytesPerSecond ?? 1e9
        queueLimit = max(4 << 20, Int(2 * rate * shape.roundTripSeconds))
    }

    /// Starts relaying on threads of its own.
    public func start() throws(BenchError) {
        do {
            try startThread(named: "relay-accept") { [self] in
                while let client = try? listener.accept() { relay(client) }
            }
        } catch {
            throw BenchError("latency relay: \(error)")
        }
    }

    /// Stops accepting; relayed connections run to their end.
    public func stop() {
        listener.shutdown(.both)
    }

    private func relay(_ client: Socket) {
        guard let addresses = try? upstream.resolve(), let server = try? Socket.connect(to: addresses, timeout: 10)
        else {
            client.close()
            return
        }
        // A path forwards each segment as it comes. With Nagle on, the relay would hold a second small write
        // (an OPEN's first DATA) until the far end's delayed ACK of the first, a delay no router adds.
        client.setNoDelay()
        server.setNoDelay()
        let closer = SocketPairCloser(client, server, users: 4)
        for (from, to, name) in [(client, server, "relay-up"), (server, client, "relay-down")] {
            let lane = DelayLane(
                delay: shape.roundTripSeconds / 2, bytesPerSecond: shape.bytesPerSecond, limit: queueLimit)
            do {
                try startThread(named: name) {
                    lane.fill(from: from)
                    closer.release()
                }
                try startThread(named: name) {
                    lane.drain(to: to, source: from)
                    closer.release()
                }
            } catch {
                client.shutdown(.both)
                server.shutdown(.both)
                closer.release()
                closer.release()
            }
        }
    }
}

/// Closes both sockets of a relayed connection once every thread using them is done.
private final class SocketPairCloser: Sendable {
    private let sockets: (Socket, Socket)
    private let remaining: Locked<Int>

    init(_ first: Socket, _ second: Socket, users: Int) {
        sockets = (first, second)
        remaining = Locked(users)
    }

    func release() {
        let last = remaining.withLock { count in
            count -= 1
            return count == 0
        }
        if last {
            sockets.0.close()
            sockets.1.close()
        }
    }
}

/// One direction of a relayed connection: chunks in flight, each with the instant it is due.
private final class DelayLane: @unchecked Sendable {  // every var is guarded by `condition`
    private let condition = MonotonicCondition()
    private var chunks: [(due: ContinuousClock.Instant, bytes: [UInt8])] = []
    private var head = 0
    private var queued = 0
    private var ended = false
    private var timeline: PathTimeline
    private let limit: Int

    init(delay: Double, bytesPerSecond: Double?, limit: Int) {
        // No drop-tail queue: a full lane holds its reader back instead (`limit`), as TCP's flow control would.
        timeline = PathTimeline(delay: .seconds(delay), bytesPerSecond: bytesPerSecond, queueLimit: nil)
        self.limit = limit
    }

    /// Reads `socket` until it ends, queueing each chunk with its arrival time at the far end.
    func fill(from socket: Socket) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { try? socket.receive(into: $0) } ?? 0
            condition.lock()
            guard n > 0 else {
                ended = true
                condition.broadcast()
                condition.unlock()
                return
            }
            while queued >= limit, !ended { condition.wait() }
            // The chunk leaves once the wire is free and it is serialized at the capped rate.
            chunks.append((timeline.pass(n, at: .now), Array(buffer[..<n])))
            queued += n
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Sends each chunk when it is due; at the end of the input, passes the FIN on. If `socket` fails,
    /// `source` is shut down so that its sender sees the path break too.
    func drain(to socket: Socket, source: Socket) {
        while true {
            condition.lock()
            while head == chunks.count, !ended { condition.wait() }
            guard head < chunks.count else {
                condition.unlock()
                socket.shutdown(.write)
                return
            }
            let (due, bytes) = chunks[head]
            condition.unlock()
            let wait = ContinuousClock.now.duration(to: due)
            if wait > .zero { sleep(seconds: wait.seconds) }
            guard (try? socket.sendAll(bytes)) != nil else {
                source.shutdown(.both)
                socket.shutdown(.both)
                condition.lock()
                ended = true
                chunks.removeAll()
                head = 0
                queued = 0
                condition.broadcast()
                condition.unlock()
                return
            }
            condition.lock()
            head += 1
            queued -= bytes.count
            if head > 1024 {
                chunks.removeFirst(head)
                head = 0
            }
            condition.broadcast()
            condition.unlock()
        }
    }
}
