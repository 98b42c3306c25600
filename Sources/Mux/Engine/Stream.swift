import CoreMetrics
import DequeModule
import Foundation

/// One tunnelled TCP connection: the client's socket on the local agent, the target's on the remote agent.
///
/// Threads: the *uplink* thread (the one that accepted or connected the socket) reads the socket and queues
/// DATA and FIN. The link's reader thread calls the `receive…` methods, which never block: it writes received
/// DATA straight to the socket when the socket takes all of it at once (the common case, and one thread
/// hand-off less per message). Only when the socket is full does the stream start a *downlink* thread, which
/// writes the rest and everything after it, in order, so that a socket that stops reading blocks only that
/// thread, never the link's reader nor this stream's uplink.
///
/// Ownership: the stream owns `socket` and closes it once, when both directions are done with it: the uplink
/// thread has returned, and the downlink direction has delivered the peer's FIN or been aborted.
/// `@unchecked Sendable`: every mutable field is guarded by `condition`.
final class Stream: @unchecked Sendable {
    /// This stream's id within its link.
    let id: StreamID
    private let link: Link
    private let condition = MonotonicCondition()
    private var socket: Socket?
    private var state = StreamState()
    /// Bytes we may still send before the peer's next WINDOW frame.
    private var sendCredit: Int
    /// DATA received and not yet written to the socket; its size is bounded by `window`.
    private var inbound = Deque<[UInt8]>()
    private var window: ReceiveWindow
    /// Users of the socket not yet done with it: the uplink thread and the downlink direction.
    private var socketUsers = 2
    /// Whether the downlink thread has been started (it then does all writing to the socket).
    private var hasDownlinkThread = false
    /// Whether the downlink thread is inside send(2), where only shutdown(2) can wake it.
    private var isWriting = false
    /// Whether the downlink direction has ended (everything the peer sent is written, or the stream failed).
    private var isDownlinkDone = false
    private var resetReason: ResetReason?
    private var bytesUp = 0
    private var bytesDown = 0
    /// When a byte last moved in either direction, for the idle timeout.
    private var lastActivity = ContinuousClock.now
    /// The agent's byte counters for what the uplink reads and what is written to the socket: on the opening
    /// side the socket is a client, on the accepting side a target.
    private let uplinkBytes: Counter
    private let downlinkBytes: Counter

    /// A stream with no socket yet: the opener attaches its client once the peer accepted (`attach`), the
    /// acceptor its target once connected (`accept`). `sendCredit` is the peer's initial window (0 until
    /// OPEN_OK on the opening side).
    init(id: StreamID, link: Link, window: ReceiveWindow, sendCredit: Int) {
        self.id = id
        self.link = link
        self.window = window
        self.sendCredit = sendCredit
        let isOpener = link.role.opens(id)
        uplinkBytes = isOpener ? link.metrics.bytesToTarget : link.metrics.bytesToClient
        downlinkBytes = isOpener ? link.metrics.bytesToClient : link.metrics.bytesToTarget
    }

    /// The write timeout bounds how long a peer that stops reading can hold the downlink thread; the receive
    /// timeout wakes the uplink to check the idle timeout.
    private func applyTimeouts(to socket: Socket) {
        socket.setSendTimeout(seconds: link.settings.writeTimeout)
        socket.setReceiveTimeout(seconds: link.settings.idleTimeout)
    }

    // MARK: Called by the uplink thread

    /// How the peer answered an OPEN.
    enum OpenOutcome: Equatable {
        /// OPEN_OK: the peer's side is connected.
        case established
        /// RESET, with the peer's reason.
        case refused(ResetReason)
        /// The link ended first (or this side aborted the stream).
        case linkClosed
    }

    /// Opener: waits until the peer answered OPEN.
    func awaitEstablished() -> OpenOutcome {
        condition.lock()
        defer { condition.unlock() }
        while state.phase == .opening { condition.wait() }
        guard state.isReset else { return .established }
        return resetReason.map { .refused($0) } ?? .linkClosed
    }

    /// Opener, once established: hands the client socket to the stream, which owns it from then on. Bytes and
    /// a FIN that arrived in between are written to it first, in order. Returns `false`, leaving `socket` to
    /// the caller, if the stream was reset in the meantime.
    func attach(_ socket: Socket) -> Bool {
        condition.lock()
        guard state.phase == .established else {
            condition.unlock()
            return false
        }
        self.socket = socket
        applyTimeouts(to: socket)
        let needsThread = !inbound.isEmpty
        hasDownlinkThread = needsThread
        let endsDownlink = !needsThread && state.hasReceivedFIN && endDownlinkWithoutThread()
        condition.unlock()
        if needsThread { startDownlinkThread() }
        if endsDownlink {
            socket.shutdown(.write)
            releaseSocket()
        }
        return true
    }

    /// Acceptor: hands the freshly connected target socket to the stream and answers OPEN_OK.
    /// Returns `false`, and aborts `socket`, if the stream was reset while the target was being connected.
    func accept(_ socket: Socket) -> Bool {
        condition.lock()
        let isEstablished = state.establish()
        if isEstablished {
            self.socket = socket
            applyTimeouts(to: socket)
        }
        let window = self.window.size
        condition.unlock()
        guard isEstablished else {
            socket.setAbortOnClose()
            socket.close()
            return false
        }
        link.queue.pushControl(.openOK(id, window: UInt32(window)))
        link.metrics.streamsOpened.increment()
        return true
    }

    /// Acceptor: answers OPEN with RESET for `reason` (the target was not allowed or could not be connected)
    /// and ends the stream.
    func refuse(_ reason: ResetReason) {
        abort(sending: reason)
        abandon()
    }

    /// Pumps socket bytes to the link until end of stream or abort.
    /// Ends the uplink thread's use of the stream: call it last.
    func run() {
        runUplink()
        releaseSocket()
    }

    /// Ends the uplink thread's use of a stream that never ran (refused, reset while opening, or its link
    /// closing); with no socket to deliver to, the downlink direction ends too.
    func abandon() {
        condition.lock()
        let endsDownlink = endDownlinkWithoutThread()
        condition.unlock()
        if endsDownlink { releaseSocket() }
        releaseSocket()
    }

    private func runUplink() {
        guard let socket = currentSocket else { return }
        // Not zero-filled, so that its pages cost memory only once bytes arrive: an idle stream touches one.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Limits.maxDataPayload, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count: Int
            do {
                count = try socket.receive(into: buffer)
            } catch {
                if error.isTimeout && !isIdle() { continue }  // the other direction is busy
                if error.isTimeout {
                    link.logger.info("stream \(id): idle for \(Int(link.settings.idleTimeout)) s; resetting it")
                }
                abort(sending: .aborted)
                return
            }
            if count == 0 {
                sendFIN()
                watchIdleAfterFIN()
                return
            }
            var offset = 0
            while offset < count {
                let grant = takeCredit(upTo: count - offset)
                guard grant > 0 else { return }
                let chunk = [UInt8](copying: UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + grant]))
                guard link.queue.pushData(.data(id, chunk)) else { return }
                offset += grant
            }
            condition.lock()
            bytesUp += count
            lastActivity = .now
            condition.unlock()
            uplinkBytes.increment(by: count)
        }
    }

    /// After our FIN only the peer's direction can still move, and the idle timeout still applies to it: a
    /// half-closed client waiting on a target that never answers is reset like any idle stream.
    private func watchIdleAfterFIN() {
        let timeout = link.settings.idleTimeout
        guard timeout > 0 else { return }
        condition.lock()
        while !state.isReset && !isDownlinkDone {
            let idleFor = ContinuousClock.now - lastActivity
            if idleFor >= .seconds(timeout) {
                condition.unlock()
                link.logger.info("stream \(id): idle for \(Int(timeout)) s; resetting it")
                return abort(sending: .aborted)
            }
            _ = condition.wait(until: lastActivity + .seconds(timeout))
        }
        condition.unlock()
    }

    /// Whether no byte moved either way for the idle timeout.
    private func isIdle() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return ContinuousClock.now - lastActivity >= .seconds(link.settings.idleTimeout)
    }

    private func sendFIN() {
        condition.lock()
        let canSend = state.sendFIN()
        condition.unlock()
        // FIN travels in the data queue, behind this stream's DATA, so it cannot overtake it.
        if canSend { _ = link.queue.pushData(.fin(id)) }
    }

    /// Waits for send credit; returns up to `wanted` bytes of it, or 0 if the stream was reset.
    private func takeCredit(upTo wanted: Int) -> Int {
        condition.lock()
        defer { condition.unlock() }
        while sendCredit == 0 && !state.isReset { condition.wait() }
        guard !state.isReset else { return 0 }
        let grant = min(wanted, sendCredit)
        sendCredit -= grant
        return grant
    }

    private var currentSocket: Socket? {
        condition.lock()
        defer { condition.unlock() }
        return state.isReset ? nil : socket
    }

    // MARK: Called by the downlink thread

    private func runDownlink() {
        defer {
            condition.lock()
            isDownlinkDone = true
            condition.broadcast()
            condition.unlock()
            releaseSocket()
        }
        guard let socket = currentSocket else { return }
        while true {
            condition.lock()
            while inbound.isEmpty && !state.hasReceivedFIN && !state.isReset { condition.wait() }
            if state.isReset {
                condition.unlock()
                return
            }
            guard let chunk = inbound.popFirst() else {
                condition.unlock()
                socket.shutdown(.write)  // the peer's FIN, after every byte before it: our client sees EOF
                return
            }
            isWriting = true
            condition.unlock()

            let failed: Bool
            do {
                try socket.sendAll(chunk)
                failed = false
            } catch {
                if error.isTimeout {
                    link.logger.info(
                        "stream \(id): peer accepted no data for \(Int(link.settings.writeTimeout)) s; resetting it")
                }
                failed = true
            }

            condition.lock()
            isWriting = false
            let increment = failed || state.isReset ? nil : recordDelivered(chunk.count)
            condition.unlock()
            if failed {
                abort(sending: .aborted)
                return
            }
            if let increment { link.queue.pushControl(.window(id, increment: increment)) }
        }
    }

    // MARK: Called by the link's reader thread; never blocks

    /// The peer accepted our OPEN and granted `window` bytes of credit.
    func receiveOpenOK(window: UInt32) {
        condition.lock()
        defer { condition.unlock() }
        guard state.establish() else { return }  // we reset it already; our RESET is on its way
        link.metrics.streamsOpened.increment()
        sendCredit = Int(window)
        condition.broadcast()
    }

    /// Writes DATA to the socket if it takes it now, and hands the rest to the downlink thread.
    /// Throws if the peer broke flow control or half-close rules.
    func receiveData(_ bytes: [UInt8]) throws(LinkError) {
        condition.lock()
        if state.isReset {  // sent before the peer saw our RESET
            condition.unlock()
            return
        }
        guard state.canReceiveData else {
            condition.unlock()
            throw .protocolViolation("DATA on stream \(id) \(state.hasReceivedFIN ? "after FIN" : "before OPEN_OK")")
        }
        guard window.receive(bytes.count) else {
            condition.unlock()
            throw .protocolViolation("stream \(id) overran its window")
        }
        guard !hasDownlinkThread, let socket else {
            inbound.append(bytes)
            condition.broadcast()
            condition.unlock()
            return
        }
        // No downlink thread means nothing is queued before these bytes. The lock is held across this
        // non-blocking send so that the socket cannot be closed under it.
        let written: Int
        do {
            written = try bytes.withUnsafeBytes { raw in
                Result { () throws(SocketError) in try socket.sendAvailable(raw) }
            }.get()
        } catch {
            condition.unlock()
            abort(sending: .aborted)
            return
        }
        let increment = recordDelivered(written)
        let needsThread = written < bytes.count
        if needsThread {
            inbound.append(Array(bytes[written...]))
            hasDownlinkThread = true
        }
        condition.unlock()
        if let increment { link.queue.pushControl(.window(id, increment: increment)) }
        if needsThread { startDownlinkThread() }
    }

    /// The peer will send no more DATA. Throws if FIN is not allowed now.
    func receiveFIN() throws(LinkError) {
        condition.lock()
        if state.isReset {
            condition.unlock()
            return
        }
        guard state.receiveFIN() else {
            condition.unlock()
            throw .protocolViolation("unexpected FIN on stream \(id)")
        }
        condition.broadcast()
        // Without a socket yet (an opener between OPEN_OK and `attach`), `attach` delivers the FIN.
        guard let socket = self.socket else {
            condition.unlock()
            return
        }
        let endsDownlink = endDownlinkWithoutThread()
        condition.unlock()
        if endsDownlink {
            socket.shutdown(.write)  // every byte before the FIN is written: our client sees EOF
            releaseSocket()
        }
    }

    /// The peer returned `increment` bytes of credit.
    func receiveWindow(increment: UInt32) throws(LinkError) {
        condition.lock()
        defer { condition.unlock() }
        if state.isReset { return }
        sendCredit += Int(increment)
        guard sendCredit <= Int(UInt32.max) else { throw .protocolViolation("stream \(id) window overflow") }
        condition.broadcast()
    }

    /// The link ended. A stream that has exchanged FIN both ways no longer needs it and finishes writing what it
    /// holds to its socket; any other is aborted.
    func linkDidClose() {
        condition.lock()
        let isDoneWithLink = state.hasSentFIN && state.hasReceivedFIN
        condition.unlock()
        if !isDoneWithLink { abort(sending: nil) }
    }

    /// The peer aborted the stream.
    func receiveReset(_ reason: ResetReason) {
        condition.lock()
        if resetReason == nil { resetReason = reason }
        condition.unlock()
        abort(sending: nil)
    }

    // MARK: Called by any thread

    /// Aborts the stream: wakes both threads, makes the final close send RST, and tells the peer unless
    /// `reason` is nil (the peer reset it, or the link is gone). Idempotent.
    func abort(sending reason: ResetReason?) {
        condition.lock()
        guard state.reset() else {
            condition.unlock()
            return
        }
        if resetReason == nil { resetReason = reason }
        inbound.removeAll()
        if let socket {
            // Under the lock, so that the last user cannot close the descriptor (and the system reuse its
            // number) in between. SHUT_RD wakes a blocked recv without sending anything, so the client sees
            // only the RST of the final close; a thread blocked in send is woken only by shutting the write
            // side as well.
            socket.setAbortOnClose()
            socket.shutdown(isWriting ? .both : .read)
        }
        let endsDownlink = endDownlinkWithoutThread()
        condition.broadcast()
        condition.unlock()
        if let reason { link.queue.pushControl(.reset(id, reason)) }
        if endsDownlink { releaseSocket() }
    }

    /// Counts `count` bytes written to the socket; returns the window increment due to the peer, if any.
    /// Call with the lock held.
    private func recordDelivered(_ count: Int) -> UInt32? {
        guard count > 0 else { return nil }
        bytesDown += count
        downlinkBytes.increment(by: count)
        lastActivity = .now
        return window.consume(count, roundTrip: link.roundTrip) { self.link.budget.reserve(upTo: $0, atLeast: 0) }
    }

    /// Marks the downlink direction done when no downlink thread exists to do it; returns whether the caller
    /// must release the direction's use of the socket. Call with the lock held.
    private func endDownlinkWithoutThread() -> Bool {
        guard !hasDownlinkThread, !isDownlinkDone else { return false }
        isDownlinkDone = true
        condition.broadcast()
        return true
    }

    /// Starts the downlink thread for bytes the socket could not take at once; resets the stream if the
    /// system is out of threads.
    private func startDownlinkThread() {
        do {
            try startThread(named: "stream-\(id)-down") { self.runDownlink() }
        } catch {
            link.logger.error("stream \(id): \(error); resetting it")
            condition.lock()
            hasDownlinkThread = false  // no thread will end the direction: abort must
            condition.unlock()
            abort(sending: .aborted)
        }
    }

    /// Ends one user's use of the socket; the last one closes it and retires the stream.
    private func releaseSocket() {
        condition.lock()
        socketUsers -= 1
        let isLast = socketUsers == 0
        let socket = self.socket
        let reserved = window.size
        let summary = "up \(bytesUp) B, down \(bytesDown) B" + (resetReason.map { ", reset: \($0)" } ?? "")
        condition.unlock()
        guard isLast else { return }
        socket?.close()
        link.budget.release(reserved)
        link.streamDidEnd(id: id, summary: summary)
    }
}
