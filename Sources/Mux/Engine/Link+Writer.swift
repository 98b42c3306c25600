import CoreMetrics
import Crypto
import Synchronization

/// The link's writer thread, one per connection and the only one that writes it: it seals what the queue gives it
/// in batches, pads the opening exchanges, sends PING when the link has been quiet for the keepalive interval,
/// and, for a session that may resume, keeps each sequenced frame until the peer acknowledges it and
/// acknowledges the peer's (docs/PROTOCOL.md §10).
extension Link {
    func runWriter(on connection: LinkConnection, from start: ConnectionStart, resending: [OutboundFrame]) {
        var writer = ConnectionWriter(
            connection: connection, timeout: settings.deadLinkTimeout, acknowledged: start.acknowledged,
            sent: resumption == nil ? nil : sent, sealedThrough: start.sealedThrough, bytesSent: metrics.bytesSent)
        var paddedBatchesLeft = Limits.paddedOpeningBatches
        var failure: LinkError?
        do throws(LinkError) {
            // Frames the peer may not have: already numbered and kept, so only sealed and sent again.
            for frame in resending { try writer.seal(frame) }
            try writer.flush()
        } catch {
            failure = error
        }
        writing: while failure == nil {
            var frames: [OutboundFrame]
            switch queue.next(maxBytes: Limits.writerBatchBytes, idleTimeout: settings.keepaliveInterval) {
            case .closed: break writing
            case .interrupted:
                if isRunning(on: connection) { continue writing } else { break writing }
            case .idle: frames = [.frame(makePing())]
            case .frames(let batch): frames = batch
            }
            guard isRunning(on: connection) else {
                if resumption != nil { keep(frames) }  // numbered now, sent on the next connection
                break writing
            }
            // The opening exchange of a link or a stream has fixed frame sizes (OPEN, OPEN_OK, the first PING);
            // padding hides them from an observer who sees only the sizes of sealed segments.
            if paddedBatchesLeft > 0 || frames.contains(where: \.isOpening) {
                paddedBatchesLeft = max(0, paddedBatchesLeft - 1)
                frames.append(.frame(.padding(count: Int.random(in: Limits.openingPadding))))
            }
            do throws(LinkError) {
                try write(frames, with: &writer)
            } catch {
                failure = error
            }
        }
        connection.channel.shutdown(.write)  // after a clean finish this tells the peer we are done
        let detachment = failure.flatMap { connectionFailed(connection, $0) }
        connection.threadDidFinish()
        threadDidFinish()
        if let detachment { awaitResumption(detachment) }
    }

    /// Seals and sends one batch from the queue, keeping its sequenced frames and acknowledging the peer's when
    /// the session may resume.
    private func write(_ frames: [OutboundFrame], with writer: inout ConnectionWriter) throws(LinkError) {
        // Numbered as they left the queue, and kept before any is sent: a send that fails part way loses none.
        if resumption != nil { keep(frames) }
        var now: UInt64?  // read once per batch, at its first datagram
        var asksForAcknowledgement = false
        for frame in frames {
            switch frame {
            case .datagram(let datagram):
                let at = now ?? MonotonicClock.nanoseconds()
                now = at
                if datagram.isStale(at: at) {
                    metrics.datagrams.recordDrop(.stale)
                    continue
                }
            case .frame(.ack):
                asksForAcknowledgement = true  // the reader's request; the ACK below says the latest count
                continue
            case .frame(let control) where control.kind == .window || control.kind == .ping || control.kind == .pong:
                asksForAcknowledgement = true
            default: break
            }
            try writer.seal(frame)
            if resumption == nil, case .data(_, let block) = frame {
                blocks.recycle(block)  // sealed: its bytes are in the batch
            }
        }
        if resumption != nil {
            let received = receivedFrames.load(ordering: .relaxed)
            let unacknowledged = received - writer.acknowledged
            if unacknowledged >= Limits.acknowledgeInBatchAfterFrames
                || (unacknowledged > 0 && asksForAcknowledgement)
            {
                try writer.seal(.frame(.ack(received)))
                writer.acknowledged = received
            }
        }
        try writer.flush()
    }

    /// Keeps the sequenced frames of `frames`, the next ones taken from the queue, until the peer acknowledges
    /// them; the rest (PING, datagrams) only ever go on the connection they were taken for.
    private func keep(_ frames: [OutboundFrame]) {
        sent.withLock { sent in
            for frame in frames where frame.isSequenced { sent.append(frame) }
        }
    }
}

/// The writer thread's side of one connection: its encoder, how many of the peer's frames it has acknowledged
/// on it, and how many of the session's sequenced frames it has sealed.
private struct ConnectionWriter {
    let connection: LinkConnection
    /// The dead-link timeout: how long a send may move nothing.
    let timeout: Double
    /// The count in the last ACK sent, or what SESSION or RESUMED said at the connection's start.
    var acknowledged: UInt64
    /// The session's kept frames, when it may resume: told before each send how many are sealed in it, the most
    /// the peer can acknowledge.
    let sent: Locked<SentFrames>?
    /// The number of the last sequenced frame sealed (frames are sealed in the order they are numbered).
    var sealedThrough: UInt64
    /// The link's count of bytes sent on the wire.
    let bytesSent: Counter
    private var published: UInt64 = 0

    init(
        connection: LinkConnection, timeout: Double, acknowledged: UInt64, sent: Locked<SentFrames>?,
        sealedThrough: UInt64, bytesSent: Counter
    ) {
        self.bytesSent = bytesSent
        self.connection = connection
        self.timeout = timeout
        self.acknowledged = acknowledged
        self.sent = sent
        self.sealedThrough = sealedThrough
    }

    /// Seals `frame` into the batch, sending what is batched first when it is full.
    mutating func seal(_ frame: OutboundFrame) throws(LinkError) {
        if !connection.encoder.canAppend(frame) { try flush() }
        do {
            try connection.encoder.append(frame)
        } catch {
            throw .protocolViolation(error.description)
        }
        if frame.isSequenced { sealedThrough += 1 }
    }

    /// Sends what is batched, with one send(2) call sequence, and empties the batch.
    mutating func flush() throws(LinkError) {
        let output = connection.encoder.output
        guard output.count > 0 else { return }
        if let sent, sealedThrough > published {
            let through = sealedThrough
            sent.withLock { $0.markFlushed(upTo: through) }
            published = through
        }
        do {
            try connection.channel.sendAll(output.bytes)
        } catch {
            throw error.isTimeout ? .peerStalled(seconds: Int(timeout)) : .socket(error)
        }
        connection.bytes.add(output.count, ordering: .relaxed)
        bytesSent.increment(by: output.count)
        output.count = 0
    }
}
