import CoreMetrics
import Logging

/// Carrying out what the stream's machine decided: `perform` with the lock held, `finish` once it is let go.
extension Stream {
    /// What is left to do once the lock is let go.
    struct AfterUnlock {
        /// The stream retired: remove it from the link and close its connection.
        var retirement: Retirement?
        /// A downlink thread is to start.
        var startsDownlinkThread = false
    }

    /// What the thread that retires the stream needs once it has let go of the lock.
    struct Retirement {
        let channel: (any ByteChannel)?
        let reservedWindow: Int
        let wasReset: Bool
        /// Why the stream was reset after it was established, if it was.
        let resetOnceEstablished: ResetReason?
        let summary: String
        /// The closing log line's fields: the stream, its target, the bytes each way and why it was reset.
        let metadata: Logger.Metadata
    }

    /// Runs `body` on the stream's state under the lock: for a question to the machine, or an event that
    /// returns no effects.
    func locked<T>(_ body: (inout StreamGuarded) -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body(&guarded)
    }

    /// Feeds one event to the machine under the lock and carries out the effects it returns.
    func apply(_ event: (inout StreamMachine) -> [StreamEffect]) {
        condition.lock()
        let effects = event(&guarded.machine)
        let after = perform(effects)
        condition.unlock()
        finish(after)
    }

    /// Carries out `effects` in order; call with the lock held. Socket calls happen here, under the lock, so that
    /// the retiring thread cannot take and close the descriptor in between; frames are queued here too, so
    /// that they reach the queue in the order the machine decided them.
    func perform(_ effects: [StreamEffect]) -> AfterUnlock {
        var after = AfterUnlock()
        for effect in effects {
            switch effect {
            case .wake: condition.broadcast()
            case .send(let frame): link.queue.pushControl(frame)
            case .cancelQueued(let reason): link.queue.resetStream(id, sending: reason.map { .reset(id, $0) })
            case .abortConnection(let shutdownBoth):
                // SHUT_RD wakes a blocked recv without sending anything, so the client sees only the RST of the
                // final close; a thread blocked in send is woken only by shutting the write side as well.
                guarded.channel?.setAbortOnClose()
                guarded.channel?.shutdown(shutdownBoth ? .both : .read)
            case .endConnectionOutput: guarded.channel?.shutdown(.write)
            case .deliverHeld: after.merge(deliverHeld())
            case .startDownlinkThread: after.startsDownlinkThread = true
            case .countOpened:
                link.metrics.streamsOpened.increment()
                if let openedAt {
                    link.metrics.streamOpenTime.recordNanoseconds(Int64(MonotonicClock.nanoseconds() - openedAt))
                }
            case .countDown(let count):
                downlinkBytes.increment(by: count)
                guarded.forwardBytes?.written(count, isOpener: openedAt != nil)
            case .retire: after.retirement = takeRetirement()
            }
        }
        return after
    }

    /// Writes the bytes held for the connection as far as it takes them without blocking, then the peer's FIN
    /// if it came. Call with the lock held: the sends do not block, and the descriptor cannot be closed under
    /// them.
    private func deliverHeld() -> AfterUnlock {
        var after = AfterUnlock()
        guard let channel = guarded.channel else { return after }
        while let chunk = guarded.machine.takeHeldForDirectWrite() {
            let effects = chunk.withUnsafeBytes { bytes in writtenDirectly(try? channel.sendAvailable(bytes), of: bytes)
            }
            after.merge(perform(effects))
        }
        after.merge(perform(guarded.machine.heldDelivered()))
        return after
    }

    /// The machine's answer to a direct write of `bytes` that took `written` of them (nil: it failed); the rest
    /// is copied only if the machine keeps it.
    func writtenDirectly(_ written: Int?, of bytes: UnsafeRawBufferPointer) -> [StreamEffect] {
        guarded.machine.wroteDirectly(
            written, of: bytes.count,
            remainder: [UInt8](copying: UnsafeRawBufferPointer(rebasing: bytes[(written ?? bytes.count)...])), id: id,
            roundTrip: link.roundTrip, grow: { self.link.budget.reserve(upTo: $0, atLeast: 0) })
    }

    /// Does what is left once the lock is let go.
    func finish(_ after: AfterUnlock) {
        if after.startsDownlinkThread { startDownlinkThread() }
        retire(after.retirement)
    }

    /// Starts the downlink thread for bytes the connection could not take at once; resets the stream if the
    /// system is out of threads.
    private func startDownlinkThread() {
        do {
            try WorkerPool.shared.run(named: "stream-\(id)-down") { self.runDownlink() }
        } catch {
            log(.error, "stream \(id): \(error); resetting it")
            apply { $0.downlinkThreadDidNotStart() }
        }
    }

    /// Takes the connection out of the stream, so that no later call can touch it, and returns what retiring
    /// needs. Call with the lock held, on the machine's `.retire`.
    private func takeRetirement() -> Retirement {
        defer { guarded.channel = nil }
        let machine = guarded.machine
        let summary = machine.traffic.summary + (machine.resetReason.map { ", reset: \($0)" } ?? "")
        let resetOnceEstablished =
            machine.isReset && machine.openOutcome == .established ? machine.resetReason ?? .aborted : nil
        let metadata = closingLogMetadata(machine.traffic, resetReason: machine.resetReason)
        return Retirement(
            channel: guarded.channel, reservedWindow: machine.window.size, wasReset: machine.isReset,
            resetOnceEstablished: resetOnceEstablished, summary: summary, metadata: metadata)
    }

    /// Removes the stream from its link, then closes its connection: a frame that arrives for the stream
    /// afterwards finds no stream, and none that found it earlier finds a descriptor.
    private func retire(_ retirement: Retirement?) {
        guard let retirement else { return }
        link.budget.release(retirement.reservedWindow)
        if retirement.wasReset { link.queue.forget(id) }
        if let reason = retirement.resetOnceEstablished { link.metrics.recordReset(reason) }
        link.streamDidEnd(id: id, summary: retirement.summary, metadata: retirement.metadata)
        retirement.channel?.close()
    }
}

extension Stream.AfterUnlock {
    /// Adds what `other` leaves to do.
    mutating func merge(_ other: Stream.AfterUnlock) {
        retirement = retirement ?? other.retirement
        startsDownlinkThread = startsDownlinkThread || other.startsDownlinkThread
    }
}
