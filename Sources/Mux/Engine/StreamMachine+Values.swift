/// The values the stream's machine answers with.
extension StreamMachine {
    package enum Phase: Equatable {
        /// OPEN sent or received; no OPEN_OK yet.
        case opening
        /// Both ends are connected.
        case established
        /// Aborted by either end.
        case reset
    }

    /// Who writes the peer's DATA to the connection.
    package enum Downlink: Equatable {
        /// The link's reader, without blocking, while the connection takes every byte at once.
        case direct
        /// A thread of the stream's own, since the connection was once full; `isWriting` while it is inside
        /// send(2), where only shutting the write side wakes it.
        case thread(isWriting: Bool)
        /// Nothing more is written: the peer's FIN was delivered, or the stream failed.
        case done
    }

    /// What to do with DATA just received.
    package enum DataDisposition: Equatable {
        /// Drop it: the stream was reset (the peer sent it before it saw our RESET).
        case ignore
        /// Keep a copy (`hold`): a downlink thread writes in order, or the connection is not there yet.
        case hold
        /// Write it to the connection now, without blocking, and report with `wroteDirectly`.
        case writeNow
    }

    /// What the downlink thread does next.
    package enum DownlinkStep: Equatable {
        /// Nothing to write yet: wait on the stream's condition.
        case wait
        /// Write this chunk (blocking), then report with `downlinkWrote`.
        case write([UInt8])
        /// Every byte is written and the peer sent FIN: shut down the connection's writing side, then end.
        case endOutput
        /// The stream was reset: end without writing.
        case stop
    }

    /// What the uplink may send now.
    package enum CreditGrant: Equatable {
        /// Up to this many bytes.
        case granted(Int)
        /// No credit yet: wait on the stream's condition.
        case wait
        /// The stream was reset.
        case reset
    }
}

/// What the stream's machine asks its threads to do, in order.
package enum StreamEffect: Equatable {
    /// Wake the stream's waiting threads: credit, an answer, bytes or the end arrived.
    case wake
    /// Queue this frame of the stream for the peer (OPEN_OK, WINDOW), as a control frame.
    case send(Frame)
    /// Drop the stream's DATA and FIN still queued, queue its RESET with this reason (none: the peer reset it,
    /// or the link is gone), and wake its uplink if it waits for room in the queue.
    case cancelQueued(ResetReason?)
    /// Make the connection's close send RST and wake whoever blocks on it: shut down its reading side, and its
    /// writing side too when `shutdownBoth` (a thread is inside send(2), which only that wakes).
    case abortConnection(shutdownBoth: Bool)
    /// Every byte before the peer's FIN is written: shut down the connection's writing side (it reads EOF).
    case endConnectionOutput
    /// Write the held bytes to the connection now, without blocking (`takeHeldForDirectWrite`,
    /// `wroteDirectly`, then `heldDelivered`).
    case deliverHeld
    /// Start the downlink thread: the connection took less than it was offered.
    case startDownlinkThread
    /// Count the stream as opened.
    case countOpened
    /// Count `count` bytes written to the connection.
    case countDown(Int)
    /// Both directions are done: take the connection out of the stream, remove the stream from its link and
    /// close the connection, after letting go of the lock.
    case retire
}
