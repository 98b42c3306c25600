import CoreMetrics

/// The link's reader thread's side of a stream: frames from the peer. Never blocks.
extension Stream {
    /// The peer accepted our OPEN and granted `window` bytes of credit, counted from the stream's first byte.
    /// Throws if that is less than the opening window, which we may have sent already, or if the stream was
    /// established before (a second OPEN_OK).
    func receiveOpenOK(window: UInt32) throws(LinkError) {
        guard window >= Limits.openingWindow else {
            throw .protocolViolation(
                "OPEN_OK for stream \(id) grants \(window) bytes, less than the \(Limits.openingWindow) of the opening window"
            )
        }
        condition.lock()
        defer { condition.unlock() }
        if guarded.lifecycle.isReset { return }  // we reset it already; our RESET is on its way
        guard guarded.lifecycle.establish() else {
            throw .protocolViolation("a second OPEN_OK for stream \(id)")
        }
        guarded.openOutcome = .established
        link.metrics.streamsOpened.increment()
        guarded.sendCredit += Int(window) - Limits.openingWindow
        condition.broadcast()
    }

    /// Writes DATA to the connection if it takes it now, and hands a copy of the rest to the downlink thread;
    /// holds a copy while the answering end's target is being connected. `bytes` is valid only during the call.
    /// Throws if the peer broke flow control or half-close rules.
    func receiveData(_ bytes: UnsafeRawBufferPointer) throws(LinkError) {
        condition.lock()
        if guarded.lifecycle.isReset {  // sent before the peer saw our RESET
            condition.unlock()
            return
        }
        guard guarded.lifecycle.canReceiveData else {
            condition.unlock()
            throw .protocolViolation(
                "DATA on stream \(id) \(guarded.lifecycle.hasReceivedFIN ? "after FIN" : "before OPEN_OK")")
        }
        // While opening nothing is written out, so every byte the opener sent is still unreturned.
        if guarded.lifecycle.phase == .opening {
            guard guarded.window.outstandingBytes + bytes.count <= Limits.openingWindow else {
                condition.unlock()
                throw .protocolViolation(
                    "stream \(id) sent more than the \(Limits.openingWindow) bytes of the opening window before OPEN_OK"
                )
            }
        }
        guard guarded.window.receive(bytes.count) else {
            condition.unlock()
            throw .protocolViolation("stream \(id) overran its window")
        }
        guard !guarded.lifecycle.hasDownlinkThread, let channel = guarded.channel else {
            guarded.inbound.append([UInt8](copying: bytes))
            condition.broadcast()
            condition.unlock()
            return
        }
        // No downlink thread means nothing is queued before these bytes.
        let delivery = deliverDirectly(bytes, to: channel)
        condition.unlock()
        complete(delivery)
    }

    /// The peer will send no more DATA. Throws if FIN is not allowed now.
    func receiveFIN() throws(LinkError) {
        condition.lock()
        if guarded.lifecycle.isReset {
            condition.unlock()
            return
        }
        guard guarded.lifecycle.receiveFIN() else {
            condition.unlock()
            throw .protocolViolation("unexpected FIN on stream \(id)")
        }
        condition.broadcast()
        // Without a connection yet (an opener between OPEN_OK and `attach`, an acceptor connecting its target),
        // `attach` or `accept` delivers the FIN.
        var retirement: Retirement?
        if let channel = guarded.channel, guarded.lifecycle.endDirectDownlink() {
            channel.shutdown(.write)  // every byte before the FIN is written: our client sees EOF
            retirement = takeRetirement()
        }
        condition.unlock()
        retire(retirement)
    }

    /// The peer returned `increment` bytes of credit.
    func receiveWindow(increment: UInt32) throws(LinkError) {
        condition.lock()
        defer { condition.unlock() }
        if guarded.lifecycle.isReset { return }
        guarded.sendCredit += Int(increment)
        guard guarded.sendCredit <= Int(UInt32.max) else { throw .protocolViolation("stream \(id) window overflow") }
        condition.broadcast()
    }

    /// The link ended. A stream that has exchanged FIN both ways no longer needs it and finishes writing what it
    /// holds to its connection; any other is aborted.
    func linkDidClose() {
        condition.lock()
        let isDoneWithLink = guarded.lifecycle.isDoneWithLink
        condition.unlock()
        if !isDoneWithLink { abort(sending: nil) }
    }

    /// The peer aborted the stream.
    func receiveReset(_ reason: ResetReason) {
        condition.lock()
        if guarded.openOutcome == nil { guarded.openOutcome = .refused(reason) }
        if guarded.resetReason == nil { guarded.resetReason = reason }
        condition.unlock()
        abort(sending: nil)
    }
}
