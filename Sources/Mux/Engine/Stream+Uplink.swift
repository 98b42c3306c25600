/// The uplink thread's side of a stream: it reads the connection and queues DATA and FIN for the link, within
/// the peer's credit.
extension Stream {
    /// Pumps the connection's bytes to the link until end of stream or abort.
    func runUplink() {
        guard let channel = currentChannel else { return }
        // Not zero-filled, so that its pages cost memory only once bytes arrive: an idle stream touches one.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Limits.maxDataPayload, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count: Int
            do {
                count = try channel.receive(into: buffer)
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
            guarded.traffic.recordUp(count)
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
        while !guarded.lifecycle.isReset && guarded.lifecycle.downlink != .done {
            let lastActivity = guarded.traffic.lastActivity
            if ContinuousClock.now - lastActivity >= .seconds(timeout) {
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
        return ContinuousClock.now - guarded.traffic.lastActivity >= .seconds(link.settings.idleTimeout)
    }

    /// The connection, unless the stream was reset.
    private var currentChannel: (any ByteChannel)? {
        condition.lock()
        defer { condition.unlock() }
        return guarded.lifecycle.isReset ? nil : guarded.channel
    }

    /// Sends FIN after the stream's DATA, unless it was reset.
    private func sendFIN() {
        condition.lock()
        let canSend = guarded.lifecycle.sendFIN()
        condition.unlock()
        // FIN travels in the data queue, behind this stream's DATA, so it cannot overtake it.
        if canSend { _ = link.queue.pushData(.fin(id)) }
    }

    /// Waits for send credit; returns up to `wanted` bytes of it, or 0 if the stream was reset.
    private func takeCredit(upTo wanted: Int) -> Int {
        condition.lock()
        defer { condition.unlock() }
        while guarded.sendCredit == 0 && !guarded.lifecycle.isReset { condition.wait() }
        guard !guarded.lifecycle.isReset else { return 0 }
        let grant = min(wanted, guarded.sendCredit)
        guarded.sendCredit -= grant
        return grant
    }
}
