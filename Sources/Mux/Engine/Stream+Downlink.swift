import DequeModule
import Logging

/// The downlink thread's side of a stream: started once the connection could not take the peer's DATA at once,
/// it writes everything queued, in order, and then the peer's FIN.
extension Stream {
    func runDownlink() {
        defer { endDownlinkThread() }
        condition.lock()
        let channel = guarded.lifecycle.isReset ? nil : guarded.channel
        condition.unlock()
        guard let channel else { return }
        while true {
            condition.lock()
            while guarded.inbound.isEmpty && !guarded.lifecycle.hasReceivedFIN && !guarded.lifecycle.isReset {
                condition.wait()
            }
            if guarded.lifecycle.isReset {
                condition.unlock()
                return
            }
            guard let chunk = guarded.inbound.popFirst() else {
                condition.unlock()
                channel.shutdown(.write)  // the peer's FIN, after every byte before it: our client sees EOF
                return
            }
            guarded.lifecycle.setWriting(true)
            condition.unlock()

            let failed: Bool
            do {
                try channel.sendAll(chunk)
                failed = false
            } catch {
                if error.isTimeout {
                    link.logger.info(
                        "stream \(id): peer accepted no data for \(Int(link.settings.writeTimeout)) s; resetting it")
                }
                failed = true
            }

            condition.lock()
            guarded.lifecycle.setWriting(false)
            let increment = failed || guarded.lifecycle.isReset ? nil : recordDelivered(chunk.count)
            condition.unlock()
            if failed {
                abort(sending: .aborted)
                return
            }
            if let increment { link.queue.pushControl(.window(id, increment: increment)) }
        }
    }

    /// Ends the downlink thread's use of the stream: its last step.
    private func endDownlinkThread() {
        condition.lock()
        guarded.lifecycle.endDownlinkThread()
        condition.broadcast()
        let retirement = takeRetirement()
        condition.unlock()
        retire(retirement)
    }
}
