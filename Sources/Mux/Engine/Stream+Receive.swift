/// The link's reader thread's side of a stream: frames from the peer, each an event of the stream's machine.
/// Never blocks.
extension Stream {
    /// The peer accepted our OPEN and granted `window` bytes of credit, counted from the stream's first byte.
    /// Throws if the machine finds it a protocol violation.
    func receiveOpenOK(window: UInt32) throws(LinkError) {
        try applyFrame { (machine) throws(LinkError) in try machine.receiveOpenOK(window: window, id: id) }
    }

    /// Writes DATA to the connection if it takes it now, and hands a copy of the rest to the downlink thread;
    /// holds a copy while there is no connection yet. `bytes` is valid only during the call. Throws if the
    /// peer broke flow control or half-close rules.
    func receiveData(_ bytes: UnsafeRawBufferPointer) throws(LinkError) {
        condition.lock()
        let disposition: StreamMachine.DataDisposition
        do {
            disposition = try guarded.machine.receiveData(count: bytes.count, id: id)
        } catch {
            condition.unlock()
            throw error
        }
        var after = AfterUnlock()
        switch disposition {
        case .ignore: break
        case .hold: after = perform(guarded.machine.hold([UInt8](copying: bytes)))
        case .writeNow:
            // Nothing is held before these bytes; the send does not block, and under the lock the connection
            // cannot be closed under it.
            after = perform(writtenDirectly(try? guarded.channel?.sendAvailable(bytes), of: bytes))
        }
        condition.unlock()
        finish(after)
    }

    /// The peer will send no more DATA. Throws if FIN is not allowed now.
    func receiveFIN() throws(LinkError) {
        try applyFrame { (machine) throws(LinkError) in try machine.receiveFIN(id: id) }
    }

    /// The peer returned `increment` bytes of credit.
    func receiveWindow(increment: UInt32) throws(LinkError) {
        try applyFrame { (machine) throws(LinkError) in try machine.receiveWindow(increment: increment, id: id) }
    }

    /// The link ended. A stream that has exchanged FIN both ways no longer needs it and finishes writing what it
    /// holds to its connection; any other is aborted.
    func linkDidClose() {
        apply { $0.linkClosed() }
    }

    /// The peer aborted the stream.
    func receiveReset(_ reason: ResetReason) {
        apply { $0.receiveReset(reason) }
    }

    /// Feeds a frame's event to the machine under the lock; a protocol violation it finds is thrown.
    private func applyFrame(_ event: (inout StreamMachine) throws(LinkError) -> [StreamEffect]) throws(LinkError) {
        condition.lock()
        let effects: [StreamEffect]
        do {
            effects = try event(&guarded.machine)
        } catch {
            condition.unlock()
            throw error
        }
        let after = perform(effects)
        condition.unlock()
        finish(after)
    }
}
