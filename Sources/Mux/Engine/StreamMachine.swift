import DequeModule

/// Everything one end of a stream decides, in one place (PROTOCOL.md §6): which frame from the peer is legal
/// now, what each of the stream's threads may do next, what goes to the peer, and when the connection must be
/// closed. A value, guarded by the stream's lock, that touches no socket and no queue: each event method
/// changes the state and returns the `StreamEffect`s to carry out, in order, or throws the protocol violation
/// that ends the link. The stream's threads only feed it events and carry out its effects (`Stream`).
///
/// Each direction ends on its own (FIN), as TCP's half-close does; RESET ends both at once. The *uplink* (the
/// thread that reads the connection) and the *downlink* (whoever writes the peer's bytes to it) each finish
/// with the connection once, and `.retire` comes exactly once, when both have. After the stream is reset no
/// effect sends the peer anything of it but its RESET.
package struct StreamMachine {
    /// Whether this end sent the OPEN. The opener may send DATA and FIN before OPEN_OK (0-RTT, PROTOCOL.md §6),
    /// so the answering end may receive them while `opening`; the answering end sends nothing before OPEN_OK.
    package let isOpener: Bool
    package private(set) var phase = Phase.opening
    /// We sent FIN: our connection reached end of stream.
    package private(set) var hasSentFIN = false
    /// The peer sent FIN: it will send no more DATA.
    package private(set) var hasReceivedFIN = false
    package private(set) var downlink = Downlink.direct
    /// The uplink has finished with the connection (or never had one).
    package private(set) var isUplinkDone = false
    /// `.retire` was returned.
    package private(set) var isRetired = false
    /// The stream holds its connection: from creation with one, `attach` or `accept`, until it retires.
    package private(set) var isConnected: Bool
    /// How the peer answered our OPEN, or how the stream ended before an answer; nil while it is unanswered.
    package private(set) var openOutcome: StreamOpenOutcome?
    /// Bytes we may still send before the peer's next WINDOW.
    package private(set) var sendCredit: Int
    private(set) var window: ReceiveWindow
    /// DATA received and not yet written to the connection, in order (on the answering end, also what the
    /// opener sent before the target was connected); bounded by `window`.
    private var inbound = Deque<[UInt8]>()
    /// Why the stream was reset: the peer's reason, or the one we sent.
    private(set) var resetReason: ResetReason?
    private(set) var traffic = StreamTraffic()

    package init(isOpener: Bool, window: ReceiveWindow, sendCredit: Int, isConnected: Bool) {
        self.isOpener = isOpener
        self.window = window
        self.sendCredit = sendCredit
        self.isConnected = isConnected
    }

    package var isReset: Bool { phase == .reset }

    /// FIN went both ways: the stream no longer needs its link, only to finish writing what it holds.
    package var isDoneWithLink: Bool { hasSentFIN && hasReceivedFIN }

    /// Whether a downlink thread is inside send(2).
    package var isWriting: Bool { downlink == .thread(isWriting: true) }

    /// Whether the peer may send DATA (and FIN) now: once established, or while opening if the peer opened.
    private var canReceiveData: Bool {
        !hasReceivedFIN && (phase == .established || (phase == .opening && !isOpener))
    }

    /// Whether this end may send DATA (and FIN) now: once established, or while opening if it opened.
    private var canSendData: Bool {
        phase == .established || (phase == .opening && isOpener)
    }

    private var hasDownlinkThread: Bool {
        if case .thread = downlink { true } else { false }
    }

    // MARK: Frames from the peer (the link's reader thread)

    /// The peer accepted our OPEN and granted `window` bytes of credit, counted from the stream's first byte.
    /// Throws if that is less than the opening window, which we may have sent already, or if the stream was
    /// established before (a second OPEN_OK).
    package mutating func receiveOpenOK(window granted: UInt32, id: StreamID) throws(LinkError) -> [StreamEffect] {
        guard granted >= Limits.openingWindow else {
            throw .protocolViolation(
                "OPEN_OK for stream \(id) grants \(granted) bytes, less than the \(Limits.openingWindow) of the opening window"
            )
        }
        if phase == .reset { return [] }  // we reset it already; our RESET is on its way
        guard phase == .opening else { throw .protocolViolation("a second OPEN_OK for stream \(id)") }
        phase = .established
        openOutcome = .established
        sendCredit += Int(granted) - Limits.openingWindow
        return [.countOpened, .wake]
    }

    /// The peer's DATA of `count` bytes: says what to do with them. Throws if the peer broke flow control or
    /// half-close rules.
    package mutating func receiveData(count: Int, id: StreamID) throws(LinkError) -> DataDisposition {
        if phase == .reset { return .ignore }
        guard canReceiveData else {
            throw .protocolViolation("DATA on stream \(id) \(hasReceivedFIN ? "after FIN" : "before OPEN_OK")")
        }
        // While opening nothing is written out, so every byte the opener sent is still unreturned.
        if phase == .opening && window.outstandingBytes + count > Limits.openingWindow {
            throw .protocolViolation(
                "stream \(id) sent more than the \(Limits.openingWindow) bytes of the opening window before OPEN_OK")
        }
        guard window.receive(count) else { throw .protocolViolation("stream \(id) overran its window") }
        // With a direct downlink and a connection, nothing is held before these bytes.
        return hasDownlinkThread || !isConnected ? .hold : .writeNow
    }

    /// Keeps `bytes` (DATA whose disposition was `.hold`) behind those held before.
    package mutating func hold(_ bytes: [UInt8]) -> [StreamEffect] {
        inbound.append(bytes)
        return [.wake]
    }

    /// The peer will send no more DATA. Throws if FIN is not allowed now.
    package mutating func receiveFIN(id: StreamID) throws(LinkError) -> [StreamEffect] {
        if phase == .reset { return [] }
        guard canReceiveData else { throw .protocolViolation("unexpected FIN on stream \(id)") }
        hasReceivedFIN = true
        // Without a connection yet (an opener between OPEN_OK and `attach`, an acceptor connecting its target),
        // `attach` or `accept` delivers the FIN; with a downlink thread, that thread does.
        guard isConnected, downlink == .direct else { return [.wake] }
        downlink = .done
        return [.wake, .endConnectionOutput] + retirement()
    }

    /// The peer returned `increment` bytes of credit.
    package mutating func receiveWindow(increment: UInt32, id: StreamID) throws(LinkError) -> [StreamEffect] {
        if phase == .reset { return [] }
        sendCredit += Int(increment)
        guard sendCredit <= Int(UInt32.max) else { throw .protocolViolation("stream \(id) window overflow") }
        return [.wake]
    }

    /// The peer aborted the stream.
    package mutating func receiveReset(_ reason: ResetReason) -> [StreamEffect] {
        if openOutcome == nil { openOutcome = .refused(reason) }
        if resetReason == nil { resetReason = reason }
        return abort(sending: nil)
    }

    /// The link ended. A stream that has exchanged FIN both ways no longer needs it and finishes writing what it
    /// holds to its connection; any other is aborted.
    package mutating func linkClosed() -> [StreamEffect] {
        isDoneWithLink ? [] : abort(sending: nil)
    }

    // MARK: Either end

    /// Aborts the stream: wakes its threads, makes the connection's close send RST, and tells the peer unless
    /// `reason` is nil (the peer reset it, or the link is gone). Does nothing once reset or retired.
    package mutating func abort(sending reason: ResetReason?) -> [StreamEffect] {
        guard phase != .reset, !isRetired else { return [] }
        phase = .reset
        if openOutcome == nil { openOutcome = .linkClosed }
        if resetReason == nil { resetReason = reason }
        inbound.removeAll()
        var effects: [StreamEffect] = isConnected ? [.abortConnection(shutdownBoth: isWriting)] : []
        if downlink == .direct { downlink = .done }
        effects += [.wake, .cancelQueued(reason)]
        return effects + retirement()
    }

    /// Opener: the peer did not answer the OPEN in time. Resets the stream, its outcome `.unanswered`; nothing
    /// if an answer came meanwhile.
    package mutating func openUnanswered() -> [StreamEffect] {
        guard openOutcome == nil else { return [] }
        openOutcome = .unanswered
        return abort(sending: .aborted)
    }

    // MARK: The connection

    /// Opener, once established: the client's connection is handed to the stream. Returns nil if the stream was
    /// reset in the meantime (the connection stays the caller's); otherwise bytes and a FIN that arrived in
    /// between are to be written first.
    package mutating func attach() -> [StreamEffect]? {
        guard phase == .established else { return nil }
        isConnected = true
        return [.deliverHeld]
    }

    /// Acceptor: the target is connected. Returns nil if the stream was reset meanwhile (the caller aborts the
    /// connection); otherwise OPEN_OK is to go out before anything that follows it (a WINDOW for the bytes
    /// delivered next), then what the opener sent meanwhile.
    package mutating func accept(id: StreamID) -> [StreamEffect]? {
        guard phase == .opening else { return nil }
        phase = .established
        openOutcome = .established
        isConnected = true
        return [.send(.openOK(id, window: UInt32(window.size))), .deliverHeld, .countOpened]
    }

    /// The next held chunk to write to the connection directly, taken out of the stream; nil when none is left
    /// or it is not the direct downlink's to write.
    package mutating func takeHeldForDirectWrite() -> [UInt8]? {
        guard phase != .reset, isConnected, downlink == .direct else { return nil }
        return inbound.popFirst()
    }

    /// Held bytes written, or none left: ends the connection's output if the peer's FIN came and every byte
    /// before it is written.
    package mutating func heldDelivered() -> [StreamEffect] {
        guard phase != .reset, isConnected, downlink == .direct, inbound.isEmpty, hasReceivedFIN else { return [] }
        downlink = .done
        return [.endConnectionOutput] + retirement()
    }

    /// A direct write of `count` bytes took `written` of them (nil: the connection failed). The rest,
    /// `remainder`, goes first to a downlink thread, which starts. Returns the WINDOW due for what was written.
    package mutating func wroteDirectly(
        _ written: Int?, of count: Int, remainder: @autoclosure () -> [UInt8], id: StreamID, roundTrip: Duration?,
        grow: (Int) -> Int
    ) -> [StreamEffect] {
        guard let written else { return abort(sending: .aborted) }
        var effects = delivered(written, id: id, roundTrip: roundTrip, grow: grow)
        if written < count {
            inbound.prepend(remainder())
            downlink = .thread(isWriting: false)
            effects.append(.startDownlinkThread)
        }
        return effects
    }

    /// Counts `count` bytes written to the connection; returns the WINDOW due to the peer, if any.
    private mutating func delivered(_ count: Int, id: StreamID, roundTrip: Duration?, grow: (Int) -> Int)
        -> [StreamEffect]
    {
        guard count > 0 else { return [] }
        traffic.recordDown(count)
        guard let increment = window.consume(count, roundTrip: roundTrip, grow: grow) else {
            return [.countDown(count)]
        }
        return [.countDown(count), .send(.window(id, increment: increment))]
    }

    // MARK: The downlink thread

    /// The downlink thread could not be started: the downlink is direct again, and the stream is to be aborted.
    package mutating func downlinkThreadDidNotStart() -> [StreamEffect] {
        precondition(hasDownlinkThread, "no downlink thread was being started")
        downlink = .direct
        return abort(sending: .aborted)
    }

    /// What the downlink thread does next; a chunk it is to write is taken out of the stream.
    package mutating func nextDownlinkStep() -> DownlinkStep {
        precondition(hasDownlinkThread, "only the downlink thread writes")
        if phase == .reset { return .stop }
        if let chunk = inbound.popFirst() {
            downlink = .thread(isWriting: true)
            return .write(chunk)
        }
        return hasReceivedFIN ? .endOutput : .wait
    }

    /// The downlink thread's blocking write of `count` bytes succeeded, or `failed`.
    package mutating func downlinkWrote(
        _ count: Int, failed: Bool, id: StreamID, roundTrip: Duration?, grow: (Int) -> Int
    )
        -> [StreamEffect]
    {
        precondition(downlink == .thread(isWriting: true), "no downlink write was in progress")
        downlink = .thread(isWriting: false)
        if failed { return abort(sending: .aborted) }
        return phase == .reset ? [] : delivered(count, id: id, roundTrip: roundTrip, grow: grow)
    }

    /// The downlink thread has finished.
    package mutating func downlinkThreadEnded() -> [StreamEffect] {
        precondition(hasDownlinkThread, "no downlink thread is running")
        downlink = .done
        return [.wake] + retirement()
    }

    // MARK: The uplink

    /// Credit for the uplink's next read, up to `wanted` bytes, taken out of the stream.
    package mutating func takeCredit(upTo wanted: Int) -> CreditGrant {
        if phase == .reset { return .reset }
        guard sendCredit > 0 else { return .wait }
        let grant = min(wanted, sendCredit)
        sendCredit -= grant
        return .granted(grant)
    }

    /// A read that was granted `granted` bytes of credit brought `received`: the rest is given back.
    package mutating func settleRead(granted: Int, received: Int) {
        sendCredit += granted - received
        if received > 0 { traffic.recordUp(received) }
    }

    /// The connection reached end of stream: whether FIN is to be queued (not once reset, not twice).
    package mutating func sendFIN() -> Bool {
        guard canSendData, !hasSentFIN else { return false }
        hasSentFIN = true
        return true
    }

    /// Whether no byte moved either way for `timeout` until `now`.
    package func isIdle(now: ContinuousClock.Instant, timeout: Double) -> Bool {
        now - traffic.lastActivity >= .seconds(timeout)
    }

    /// The uplink has finished with the connection.
    package mutating func uplinkEnded() -> [StreamEffect] {
        precondition(!isUplinkDone, "the uplink ended twice")
        isUplinkDone = true
        return retirement()
    }

    /// The stream never ran and never will (refused, reset while opening, or its link closing): it ends without
    /// a connection, both directions at once, reset if it was not yet (telling the peer nothing: whoever gives it
    /// up has told the peer already, or the link is gone).
    package mutating func abandoned() -> [StreamEffect] {
        precondition(!isUplinkDone, "the uplink ended twice")
        let effects = abort(sending: nil)
        if downlink == .direct { downlink = .done }
        isUplinkDone = true
        return effects + retirement()
    }

    // MARK: Retiring

    /// `.retire`, once both directions are done; after it the stream holds no connection.
    private mutating func retirement() -> [StreamEffect] {
        guard isUplinkDone, downlink == .done, !isRetired else { return [] }
        isRetired = true
        isConnected = false
        return [.retire]
    }
}
