/// The half-close state machine of one stream, as seen by one end. A value type: the stream's lock guards it.
///
/// Each direction ends on its own (FIN), as TCP's half-close does; RESET ends both at once. The stream is
/// done, and its id free, after FIN both ways or a RESET.
struct StreamState {
    enum Phase: Equatable {
        /// OPEN sent or received; no OPEN_OK yet.
        case opening
        /// Both ends are connected.
        case established
        /// Aborted by either end.
        case reset
    }

    private(set) var phase = Phase.opening
    /// We sent FIN: our socket reached end of stream.
    private(set) var hasSentFIN = false
    /// The peer sent FIN: it will send no more DATA.
    private(set) var hasReceivedFIN = false

    var isReset: Bool { phase == .reset }

    /// OPEN_OK was sent or received. Returns `false` if the stream was reset first.
    mutating func establish() -> Bool {
        guard phase == .opening else { return false }
        phase = .established
        return true
    }

    /// Whether the peer may send DATA now.
    var canReceiveData: Bool { phase == .established && !hasReceivedFIN }

    /// The peer's FIN. Returns `false` if it is not allowed now (before OPEN_OK, or a second FIN).
    mutating func receiveFIN() -> Bool {
        guard canReceiveData else { return false }
        hasReceivedFIN = true
        return true
    }

    /// We are about to send FIN. Returns `false` if the stream was reset.
    mutating func sendFIN() -> Bool {
        guard phase == .established, !hasSentFIN else { return false }
        hasSentFIN = true
        return true
    }

    /// Aborts the stream. Returns `false` if it was already reset.
    mutating func reset() -> Bool {
        guard phase != .reset else { return false }
        phase = .reset
        return true
    }
}
