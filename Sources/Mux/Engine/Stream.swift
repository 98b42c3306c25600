import CoreMetrics
import DequeModule
import Logging

/// One tunnelled TCP connection: the client's on the local agent, the target's on the remote agent.
///
/// Threads: the *uplink* thread (the one that accepted or connected the connection) reads it and queues DATA
/// and FIN (`Stream+Uplink.swift`). The link's reader thread calls the `receive…` methods
/// (`Stream+Receive.swift`), which never block:
/// it writes received DATA straight to the connection when it takes all of it at once (the common case, and
/// one thread hand-off less per message). Only when the connection is full does the stream start a
/// *downlink* thread (`Stream+Downlink.swift`), which writes the rest and everything after it, in order, so that a connection that stops
/// reading blocks only that thread, never the link's reader nor this stream's uplink.
///
/// Ownership: the stream owns its connection from `attach` or `accept` on. Its `StreamLifecycle` says when both
/// directions are done with it; the one thread told so takes it out of the stream under the lock, removes the stream from
/// its link, and then closes it, so that nothing can touch the descriptor once it is closed.
/// `@unchecked Sendable`: every mutable field is guarded by `condition`.
final class Stream: @unchecked Sendable {
    /// This stream's id within its link.
    let id: StreamID
    let link: Link
    let condition = MonotonicCondition()
    /// Everything about the stream that changes. Guarded by `condition`; only Stream's own files touch it.
    var guarded: StreamGuarded
    /// The agent's byte counters for what the uplink reads and what is written to the connection: on the
    /// opening side it is a client's, on the accepting side a target's.
    let uplinkBytes: Counter
    private let downlinkBytes: Counter

    /// A stream whose OPEN is about to be sent or was received. The opener passes its client's `channel` when
    /// it carries the client at once (0-RTT: its uplink reads from the start) or attaches it once the peer
    /// accepted (`attach`); the acceptor attaches its target once connected (`accept`). `sendCredit` is the
    /// peer's initial window: the opening window on the opening side until OPEN_OK tells the real one.
    init(id: StreamID, link: Link, window: ReceiveWindow, sendCredit: Int, channel: (any ByteChannel)? = nil) {
        self.id = id
        self.link = link
        let isOpener = link.role.opens(id)
        guarded = StreamGuarded(isOpener: isOpener, window: window, sendCredit: sendCredit)
        uplinkBytes = isOpener ? link.metrics.bytesToTarget : link.metrics.bytesToClient
        downlinkBytes = isOpener ? link.metrics.bytesToClient : link.metrics.bytesToTarget
        if let channel { own(channel) }
    }

    /// Takes `channel` as the stream's connection. The write timeout bounds how long a peer that stops reading
    /// can hold the downlink thread; the receive timeout wakes the uplink to check the idle timeout.
    private func own(_ channel: any ByteChannel) {
        guarded.channel = channel
        channel.setTimeouts(receive: link.settings.idleTimeout, send: link.settings.writeTimeout)
    }

    // MARK: Called by the uplink thread

    /// Opener: waits until the peer answered OPEN or the stream ended without an answer, for at most `seconds`;
    /// then the stream is reset and the outcome is `.unanswered`. (A dead peer ends the link sooner, by the
    /// dead-link timeout; this bounds a live one that never answers.)
    func awaitEstablished(within seconds: Double) -> OpenOutcome {
        let deadline = ContinuousClock.now + .seconds(seconds)
        condition.lock()
        while guarded.openOutcome == nil && condition.wait(until: deadline) {}
        if let outcome = guarded.openOutcome {
            condition.unlock()
            return outcome
        }
        guarded.openOutcome = .unanswered
        condition.unlock()
        abort(sending: .aborted)
        return .unanswered
    }

    /// Opener, once established: hands the client's connection to the stream, which owns it from then on. Bytes
    /// and a FIN that arrived in between are written to it first, in order. Returns `false`, leaving `channel`
    /// to the caller, if the stream was reset in the meantime.
    func attach(_ channel: any ByteChannel) -> Bool {
        condition.lock()
        guard guarded.lifecycle.phase == .established else {
            condition.unlock()
            return false
        }
        own(channel)
        let delivery = deliverHeldBytes(to: channel)
        condition.unlock()
        complete(delivery)
        return true
    }

    /// Acceptor: hands the freshly connected target to the stream, answers OPEN_OK, and writes what the opener
    /// sent meanwhile. Returns `false`, and aborts `channel`, if the stream was reset while the target was
    /// being connected.
    func accept(_ channel: any ByteChannel) -> Bool {
        condition.lock()
        guard guarded.lifecycle.establish() else {
            condition.unlock()
            channel.setAbortOnClose()
            channel.close()
            return false
        }
        guarded.openOutcome = .established
        own(channel)
        // Queued under the lock, so that no WINDOW for the bytes delivered here can go out before it.
        link.queue.pushControl(.openOK(id, window: UInt32(guarded.window.size)))
        let delivery = deliverHeldBytes(to: channel)
        condition.unlock()
        link.metrics.streamsOpened.increment()
        complete(delivery)
        return true
    }

    /// Acceptor: answers OPEN with RESET for `reason` (the target was not allowed or could not be connected)
    /// and ends the stream.
    func refuse(_ reason: ResetReason) {
        abort(sending: reason)
        abandon()
    }

    /// Pumps the connection's bytes to the link until end of stream or abort.
    /// Ends the uplink thread's use of the stream: call it last.
    func run() {
        runUplink()
        endUplink(endingDownlink: false)
    }

    /// Ends the uplink thread's use of a stream that never ran (refused, reset while opening, or its link
    /// closing); with no connection to deliver to, the downlink direction ends too.
    func abandon() {
        endUplink(endingDownlink: true)
    }

    private func endUplink(endingDownlink: Bool) {
        condition.lock()
        if endingDownlink { _ = guarded.lifecycle.endDirectDownlink() }
        guarded.lifecycle.endUplink()
        let retirement = takeRetirement()
        condition.unlock()
        retire(retirement)
    }

    // MARK: Called by any thread

    /// Aborts the stream: wakes both threads, makes the final close send RST, and tells the peer unless
    /// `reason` is nil (the peer reset it, or the link is gone). Idempotent; does nothing once it retired.
    func abort(sending reason: ResetReason?) {
        condition.lock()
        guard guarded.lifecycle.reset() else {
            condition.unlock()
            return
        }
        if guarded.openOutcome == nil { guarded.openOutcome = .linkClosed }
        if guarded.resetReason == nil { guarded.resetReason = reason }
        guarded.inbound.removeAll()
        if let channel = guarded.channel {
            // Under the lock, so that the retiring thread cannot take and close the descriptor in between.
            // SHUT_RD wakes a blocked recv without sending anything, so the client sees only the RST of the
            // final close; a thread blocked in send is woken only by shutting the write side as well.
            channel.setAbortOnClose()
            channel.shutdown(guarded.lifecycle.isWriting ? .both : .read)
        }
        let endsDownlink = guarded.lifecycle.endDirectDownlink()
        let retirement = endsDownlink ? takeRetirement() : nil
        condition.broadcast()
        condition.unlock()
        // Its queued DATA and FIN go, and its uplink stops waiting for room in the queue: nothing of the stream
        // may follow its RESET, and its thread, descriptor and slot are free at once.
        link.queue.resetStream(id, sending: reason.map { .reset(id, $0) })
        retire(retirement)
    }

    /// Counts `count` bytes written to the connection; returns the window increment due to the peer, if any.
    /// Call with the lock held.
    func recordDelivered(_ count: Int) -> UInt32? {
        guard count > 0 else { return nil }
        guarded.traffic.recordDown(count)
        downlinkBytes.increment(by: count)
        return guarded.window.consume(count, roundTrip: link.roundTrip) {
            self.link.budget.reserve(upTo: $0, atLeast: 0)
        }
    }

    /// Starts the downlink thread for bytes the connection could not take at once; resets the stream if the
    /// system is out of threads.
    func startDownlinkThread() {
        do {
            try WorkerPool.shared.run(named: "stream-\(id)-down") { self.runDownlink() }
        } catch {
            link.logger.error("stream \(id): \(error); resetting it")
            condition.lock()
            guarded.lifecycle.downlinkThreadDidNotStart()  // no thread will end the direction: abort must
            condition.unlock()
            abort(sending: .aborted)
        }
    }

    // MARK: Retiring, exactly once

    /// What the thread that retires the stream needs once it has let go of the lock.
    struct Retirement {
        let channel: (any ByteChannel)?
        let reservedWindow: Int
        let summary: String
    }

    /// When both directions are done: takes the connection out of the stream, so that no later call can touch
    /// it, and returns what retiring needs. Call with the lock held.
    func takeRetirement() -> Retirement? {
        guard guarded.lifecycle.retire() else { return nil }
        defer { guarded.channel = nil }
        let summary = guarded.traffic.summary + (guarded.resetReason.map { ", reset: \($0)" } ?? "")
        return Retirement(channel: guarded.channel, reservedWindow: guarded.window.size, summary: summary)
    }

    /// Removes the stream from its link, then closes its connection: a frame that arrives for the stream
    /// afterwards finds no stream, and none that found it earlier finds a descriptor.
    func retire(_ retirement: Retirement?) {
        guard let retirement else { return }
        link.budget.release(retirement.reservedWindow)
        link.streamDidEnd(id: id, summary: retirement.summary)
        retirement.channel?.close()
    }
}
