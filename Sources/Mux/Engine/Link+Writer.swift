import Crypto

/// The link's writer thread, the only one that writes its channel: it seals what the queue gives it in batches,
/// pads the opening exchanges, and sends PING when the link has been quiet for the keepalive interval.
extension Link {
    func runWriter(_ encoder: FrameEncoder) {
        var encoder = encoder
        var paddedBatchesLeft = Limits.paddedOpeningBatches
        writing: while true {
            var frames: [OutboundFrame]
            switch queue.next(maxBytes: Limits.writerBatchBytes, idleTimeout: settings.keepaliveInterval) {
            case .closed: break writing
            case .idle: frames = [.frame(makePing())]
            case .frames(let batch): frames = batch
            }
            // The opening exchange of a link or a stream has fixed frame sizes (OPEN, OPEN_OK, the first PING);
            // padding hides them from an observer who sees only the sizes of sealed segments.
            if paddedBatchesLeft > 0 || frames.contains(where: \.isOpening) {
                paddedBatchesLeft = max(0, paddedBatchesLeft - 1)
                frames.append(.frame(.padding(count: Int.random(in: Limits.openingPadding))))
            }
            var now: UInt64?  // read once per batch, at its first datagram
            do throws(LinkError) {
                for frame in frames {
                    if case .datagram(let datagram) = frame {
                        let at = now ?? MonotonicClock.nanoseconds()
                        now = at
                        if datagram.isStale(at: at) {
                            metrics.datagrams.recordDrop(.stale)
                            continue
                        }
                    }
                    if !encoder.canAppend(frame) { try flush(&encoder) }
                    do {
                        try encoder.append(frame)
                    } catch {
                        throw .protocolViolation(error.description)
                    }
                    if case .data(_, let block) = frame { blocks.recycle(block) }  // sealed: its bytes are in the batch
                }
                try flush(&encoder)
            } catch {
                close(error)
                break writing
            }
        }
        channel.shutdown(.write)  // after a clean finish this tells the peer we are done
        threadDidFinish()
    }

    /// Sends the encoder's sealed bytes with one send(2) call sequence and empties it.
    private func flush(_ encoder: inout FrameEncoder) throws(LinkError) {
        do {
            try channel.sendAll(encoder.output.bytes)
        } catch {
            throw error.isTimeout ? .peerStalled(seconds: Int(settings.deadLinkTimeout)) : .socket(error)
        }
        encoder.output.count = 0
    }
}
