import Logging

/// The downlink thread's side of a stream: started once the connection could not take the peer's DATA at once,
/// it writes everything held, in order, and then the peer's FIN, as the machine's `nextDownlinkStep` says.
extension Stream {
    func runDownlink() {
        while true {
            condition.lock()
            var step = guarded.machine.nextDownlinkStep()
            while step == .wait {
                condition.wait()
                step = guarded.machine.nextDownlinkStep()
            }
            let channel = guarded.channel
            condition.unlock()
            guard let channel else { return endDownlinkThread() }
            switch step {
            case .wait, .stop: return endDownlinkThread()
            case .endOutput:
                channel.shutdown(.write)  // the peer's FIN, after every byte before it: our client sees EOF
                return endDownlinkThread()
            case .write(let chunk):
                let failed: Bool
                do {
                    try channel.sendAll(chunk)
                    failed = false
                } catch {
                    if error.isTimeout {
                        link.logger.info(
                            "stream \(id): peer accepted no data for \(Int(link.settings.writeTimeout)) s; resetting it"
                        )
                    }
                    failed = true
                }
                apply {
                    $0.downlinkWrote(
                        chunk.count, failed: failed, id: id, roundTrip: link.roundTrip,
                        grow: { self.link.budget.reserve(upTo: $0, atLeast: 0) })
                }
            }
        }
    }

    /// Ends the downlink thread's use of the stream: its last step.
    private func endDownlinkThread() {
        apply { $0.downlinkThreadEnded() }
    }
}
