import DequeModule

/// Writing the peer's DATA to the connection without a thread of its own: under the stream's lock, with
/// non-blocking sends, as long as the connection takes every byte at once. What it cannot take goes to the
/// downlink thread (`Stream+Downlink.swift`), which writes it and everything after it, in order.
extension Stream {
    /// What a thread that wrote to the connection under the lock must do once it has let go of it.
    struct DirectDelivery {
        /// The WINDOW increment due to the peer for the bytes written.
        var increment: UInt32?
        /// Bytes are left that the connection did not take: a downlink thread must be started.
        var startsThread = false
        /// The connection failed: the stream must be aborted.
        var failed = false

        mutating func add(_ other: DirectDelivery) {
            if let more = other.increment { increment = (increment ?? 0) + more }
            startsThread = startsThread || other.startsThread
            failed = failed || other.failed
        }
    }

    /// Writes as much of `bytes` as `channel` takes now and queues the rest, first, for a downlink thread. Call
    /// with the lock held and no downlink thread running; the lock is held across the non-blocking send so that
    /// the connection cannot be closed under it.
    func deliverDirectly(_ bytes: UnsafeRawBufferPointer, to channel: any ByteChannel) -> DirectDelivery {
        let written: Int
        do {
            written = try channel.sendAvailable(bytes)
        } catch {
            return DirectDelivery(failed: true)
        }
        var delivery = DirectDelivery(increment: recordDelivered(written))
        if written < bytes.count {
            guarded.inbound.prepend([UInt8](copying: UnsafeRawBufferPointer(rebasing: bytes[written...])))
            guarded.lifecycle.startDownlinkThread()
            delivery.startsThread = true
        }
        return delivery
    }

    /// Writes what arrived before the connection was attached (the opener's first bytes on the answering end,
    /// the target's on the opening one), then the peer's FIN if it came too. Call with the lock held, once
    /// `guarded.channel` is `channel`.
    func deliverHeldBytes(to channel: any ByteChannel) -> DirectDelivery {
        var delivery = DirectDelivery()
        while !delivery.startsThread, !delivery.failed, let chunk = guarded.inbound.popFirst() {
            delivery.add(chunk.withUnsafeBytes { deliverDirectly($0, to: channel) })
        }
        if !delivery.startsThread, !delivery.failed, guarded.lifecycle.hasReceivedFIN,
            guarded.lifecycle.endDirectDownlink()
        {
            channel.shutdown(.write)  // the peer's FIN, after every byte before it: the connection sees EOF
        }
        return delivery
    }

    /// Does what `delivery` asks, without the lock.
    func complete(_ delivery: DirectDelivery) {
        if delivery.failed { return abort(sending: .aborted) }
        if let increment = delivery.increment { link.queue.pushControl(.window(id, increment: increment)) }
        if delivery.startsThread { startDownlinkThread() }
    }
}
