import CoreMetrics
import DequeModule
import Logging

/// One tunnelled TCP connection: the client's on the local agent, the target's on the remote agent.
///
/// What the stream does is decided by its `StreamMachine` alone; this class and its extensions are the threads
/// that feed it events and carry out the effects it returns (`Stream+Effects.swift`). Threads: the *uplink*
/// thread (the one that accepted or connected the connection) reads it and queues DATA and FIN
/// (`Stream+Uplink.swift`). The link's reader thread hands it the peer's frames (`Stream+Receive.swift`), never
/// blocking: it writes received DATA straight to the connection when it takes all of it at once (the common
/// case, and one thread hand-off less per message). Only when the connection is full does the stream start a
/// *downlink* thread (`Stream+Downlink.swift`), which writes the rest and everything after it, in order, so
/// that a connection that stops reading blocks only that thread, never the link's reader nor this stream's
/// uplink.
///
/// Ownership: the stream owns its connection from `attach` or `accept` on (or from `init`, given one). The
/// machine's `.retire` comes once, when both directions are done with it; the thread that gets it takes the
/// connection out of the stream under the lock, removes the stream from its link, and then closes it, so that
/// nothing can touch the descriptor once it is closed.
/// `@unchecked Sendable`: every mutable field is in `guarded`, which `condition` guards.
final class Stream: @unchecked Sendable {
    /// This stream's id within its link.
    let id: StreamID
    let link: Link
    /// Where the stream goes, as its OPEN named it.
    let target: StreamTarget
    let condition = MonotonicCondition()
    /// Everything about the stream that changes. Guarded by `condition`; only Stream's own files touch it.
    var guarded: StreamGuarded
    /// The agent's byte counters for what the uplink reads and what is written to the connection: on the
    /// opening side it is a client's, on the accepting side a target's.
    let uplinkBytes: Counter
    let downlinkBytes: Counter
    /// Opener: when its OPEN was queued (`MonotonicClock` nanoseconds), to time the answer.
    let openedAt: UInt64?

    /// A stream whose OPEN is about to be sent or was received. The opener passes its client's `channel` when
    /// it carries the client at once (0-RTT: its uplink reads from the start) or attaches it once the peer
    /// accepted (`attach`); the acceptor attaches its target once connected (`accept`). `sendCredit` is the
    /// peer's initial window: the opening window on the opening side until OPEN_OK tells the real one. An opener
    /// also counts its bytes into `forwardBytes`, when given.
    init(
        id: StreamID, link: Link, target: StreamTarget, window: ReceiveWindow, sendCredit: Int,
        channel: (any ByteChannel)? = nil, counting forwardBytes: StreamCounters? = nil
    ) {
        self.id = id
        self.link = link
        self.target = target
        let isOpener = link.role.opens(id)
        openedAt = isOpener ? MonotonicClock.nanoseconds() : nil
        guarded = StreamGuarded(
            machine: StreamMachine(
                isOpener: isOpener, window: window, sendCredit: sendCredit, isConnected: channel != nil),
            forwardBytes: forwardBytes)
        uplinkBytes = isOpener ? link.metrics.bytesToTarget : link.metrics.bytesToClient
        downlinkBytes = isOpener ? link.metrics.bytesToClient : link.metrics.bytesToTarget
        if let channel { own(channel) }
    }

    /// Takes `channel` as the stream's connection: a client's or a target's, every socket an agent writes a
    /// stream's bytes to, which sends each write at once. The write timeout bounds how long a peer that stops
    /// reading can hold the downlink thread; the receive timeout wakes the uplink to check the idle timeout.
    private func own(_ channel: any ByteChannel) {
        guarded.channel = channel
        channel.setNoDelay()
        channel.setTimeouts(receive: link.settings.idleTimeout, send: link.settings.writeTimeout)
    }

    /// The fields a log line about the stream carries, besides its words: its id and target (in JSON logs,
    /// fields of their own).
    var logMetadata: Logger.Metadata { ["stream": "\(id)", "target": "\(target)"] }

    /// Logs `message` about the stream at `level`, with its fields (`logMetadata`). Out of line, and the words an
    /// autoclosure: a log call's frame is larger than the rest of a stream thread's setup, and at 10,000 streams one
    /// more touched stack page per thread is 40 MiB (`Limits.threadStackSize`).
    @inline(never)
    func log(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message) {
        link.logger.log(level: level, message(), metadata: logMetadata)
    }

    /// The fields of the stream's closing log line: its own, the bytes each way, and why it was reset if it was.
    func closingLogMetadata(_ traffic: StreamTraffic, resetReason: ResetReason?) -> Logger.Metadata {
        var metadata = logMetadata
        metadata["bytes_up"] = "\(traffic.bytesUp)"
        metadata["bytes_down"] = "\(traffic.bytesDown)"
        if let resetReason { metadata["reset"] = "\(resetReason.metricLabel)" }
        return metadata
    }

    // MARK: Called by the uplink thread

    /// Opener: waits until the peer answered OPEN or the stream ended without an answer, for at most `seconds`;
    /// then the stream is reset and the outcome is `.unanswered`. (A dead peer ends the link sooner, by the
    /// dead-link timeout; this bounds a live one that never answers.)
    func awaitEstablished(within seconds: Double) -> StreamOpenOutcome {
        let deadline = ContinuousClock.now + .seconds(seconds)
        condition.lock()
        while guarded.machine.openOutcome == nil && condition.wait(until: deadline) {}
        let after = perform(guarded.machine.openUnanswered())
        let outcome = guarded.machine.openOutcome ?? .linkClosed
        condition.unlock()
        finish(after)
        return outcome
    }

    /// Opener, once established: hands the client's connection to the stream, which owns it from then on. Bytes
    /// and a FIN that arrived in between are written to it first, in order. Returns `false`, leaving `channel`
    /// to the caller, if the stream was reset in the meantime.
    func attach(_ channel: any ByteChannel) -> Bool {
        condition.lock()
        guard let effects = guarded.machine.attach() else {
            condition.unlock()
            return false
        }
        own(channel)
        let after = perform(effects)
        condition.unlock()
        finish(after)
        return true
    }

    /// Acceptor: hands the freshly connected target to the stream, answers OPEN_OK, and writes what the opener
    /// sent meanwhile; its bytes count into `forwardBytes` too, when given. Returns `false`, and aborts
    /// `channel`, if the stream was reset while the target was being connected.
    func accept(_ channel: any ByteChannel, counting forwardBytes: StreamCounters? = nil) -> Bool {
        condition.lock()
        guard let effects = guarded.machine.accept(id: id) else {
            condition.unlock()
            channel.setAbortOnClose()
            channel.close()
            return false
        }
        own(channel)
        guarded.forwardBytes = forwardBytes
        // Under the lock, so that no WINDOW for the bytes delivered here can go out before the OPEN_OK.
        let after = perform(effects)
        condition.unlock()
        finish(after)
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
        apply { $0.uplinkEnded() }
    }

    /// Ends the uplink thread's use of a stream that never ran (refused, reset while opening, or its link
    /// closing); with no connection to deliver to, the downlink direction ends too.
    func abandon() {
        apply { $0.abandoned() }
    }

    // MARK: Called by any thread

    /// Aborts the stream: wakes its threads, makes the final close send RST, drops what it queued for the peer,
    /// and tells the peer unless `reason` is nil (the peer reset it, or the link is gone). Idempotent; does
    /// nothing once it retired.
    func abort(sending reason: ResetReason?) {
        apply { $0.abort(sending: reason) }
    }
}
