import CoreMetrics
import Logging

/// The uplink thread's side of a stream: it reads the connection and queues DATA and FIN for the link, within
/// the peer's credit.
extension Stream {
    /// Pumps the connection's bytes to the link until end of stream or abort. Each read goes straight into
    /// the block the writer seals it from. The stream waits for bytes holding no block, so that an idle stream
    /// pins no memory; one whose last read filled a whole frame most likely has more waiting and reads at once.
    func runUplink() {
        guard let channel = currentChannel else { return }
        // Given before the uplink started, and never changed after.
        let forwardBytes = locked(\.forwardBytes)
        let isOpener = openedAt != nil
        var expectsMore = false
        while true {
            if !expectsMore {
                let hasBytes: Bool
                do {
                    hasBytes = try channel.awaitBytes()
                } catch {
                    if goesOn(after: error) { continue }
                    return
                }
                guard hasBytes else { return finishUplink() }
            }
            let grant = takeCredit(upTo: Limits.maxDataPayload)
            guard grant > 0 else { return }
            let block = link.blocks.take()
            let count: Int
            do {
                count = try channel.receive(into: UnsafeMutableRawBufferPointer(rebasing: block.room[..<grant]))
            } catch {
                link.blocks.recycle(block)
                settleRead(granted: grant, received: 0)
                if goesOn(after: error) { continue }
                return
            }
            settleRead(granted: grant, received: count)
            guard count > 0 else {
                link.blocks.recycle(block)
                return finishUplink()
            }
            block.setCount(count)
            guard link.queue.pushData(.data(block), of: id) else { return }
            expectsMore = count == Limits.maxDataPayload
            uplinkBytes.increment(by: count)
            forwardBytes?.read(count, isOpener: isOpener)
        }
    }

    /// After a receive failed with `error`: whether the uplink goes on (a timeout while the other direction is
    /// busy). Otherwise the stream is aborted.
    private func goesOn(after error: SocketError) -> Bool {
        if error.isTimeout && !isIdle() { return true }
        if error.isTimeout {
            log(.info, "stream \(id): idle for \(Int(link.settings.idleTimeout)) s; resetting it")
        }
        abort(sending: .aborted)
        return false
    }

    /// The connection reached end of stream: FIN, then the idle watch over the peer's direction.
    private func finishUplink() {
        sendFIN()
        watchIdleAfterFIN()
    }

    /// After our FIN only the peer's direction can still move, and the idle timeout still applies to it: a
    /// half-closed client waiting on a target that never answers is reset like any idle stream.
    private func watchIdleAfterFIN() {
        let timeout = link.settings.idleTimeout
        guard timeout > 0 else { return }
        condition.lock()
        while !guarded.machine.isReset && guarded.machine.downlink != .done {
            if guarded.machine.isIdle(now: .now, timeout: timeout) {
                condition.unlock()
                log(.info, "stream \(id): idle for \(Int(timeout)) s; resetting it")
                return abort(sending: .aborted)
            }
            _ = condition.wait(until: guarded.machine.traffic.lastActivity + .seconds(timeout))
        }
        condition.unlock()
    }

    /// Whether no byte moved either way for the idle timeout.
    private func isIdle() -> Bool {
        locked { $0.machine.isIdle(now: .now, timeout: link.settings.idleTimeout) }
    }

    /// The connection, unless the stream was reset.
    private var currentChannel: (any ByteChannel)? {
        locked { $0.machine.isReset ? nil : $0.channel }
    }

    /// Sends FIN after the stream's DATA, unless it was reset.
    private func sendFIN() {
        // FIN travels in the data queue, behind this stream's DATA, so it cannot overtake it.
        if locked({ $0.machine.sendFIN() }) { _ = link.queue.pushData(.fin, of: id) }
    }

    /// Waits for send credit; returns up to `wanted` bytes of it, or 0 if the stream was reset.
    private func takeCredit(upTo wanted: Int) -> Int {
        condition.lock()
        defer { condition.unlock() }
        while true {
            switch guarded.machine.takeCredit(upTo: wanted) {
            case .granted(let grant): return grant
            case .reset: return 0
            case .wait: condition.wait()
            }
        }
    }

    /// After a read that was granted `granted` bytes of credit and brought `received`: gives back the credit it
    /// did not use and counts the bytes, in one hold of the lock.
    private func settleRead(granted: Int, received: Int) {
        locked { $0.machine.settleRead(granted: granted, received: received) }
    }
}
