/// The lifecycle of one stream as seen by one end: the protocol's half-close state machine (PROTOCOL.md §6),
/// and which of the stream's two directions still use its descriptor. A pure value, guarded by the stream's
/// lock: each transition says whether it was allowed, and `retire()` says, exactly once, when the descriptor
/// must be closed.
///
/// Each direction ends on its own (FIN), as TCP's half-close does; RESET ends both at once. The *uplink*
/// (the thread that reads the descriptor) and the *downlink* (whatever writes the peer's bytes to it) each
/// finish with the descriptor once; the stream retires when both have.
struct StreamLifecycle: Equatable {
    enum Phase: Equatable {
        /// OPEN sent or received; no OPEN_OK yet.
        case opening
        /// Both ends are connected.
        case established
        /// Aborted by either end.
        case reset
    }

    /// Who writes the peer's DATA to the descriptor.
    enum Downlink: Equatable {
        /// The link's reader, without blocking, while the descriptor takes every byte at once.
        case direct
        /// A thread of the stream's own, since the descriptor was once full; `isWriting` while it is inside
        /// send(2), where only shutting the write side wakes it.
        case thread(isWriting: Bool)
        /// Nothing more is written: the peer's FIN was delivered, or the stream failed.
        case done
    }

    /// Whether this end sent the OPEN. The opener may send DATA and FIN before OPEN_OK (0-RTT, PROTOCOL.md §6),
    /// so the answering end may receive them while `opening`; the answering end sends nothing before OPEN_OK.
    let isOpener: Bool
    private(set) var phase = Phase.opening
    /// We sent FIN: our descriptor reached end of stream.
    private(set) var hasSentFIN = false
    /// The peer sent FIN: it will send no more DATA.
    private(set) var hasReceivedFIN = false
    private(set) var downlink = Downlink.direct
    /// The uplink has finished with the descriptor (or never had one).
    private(set) var isUplinkDone = false
    /// Both directions finished and the one caller told to close the descriptor was told.
    private(set) var isRetired = false

    init(isOpener: Bool) {
        self.isOpener = isOpener
    }

    var isReset: Bool { phase == .reset }

    /// Whether the peer may send DATA (and FIN) now: once established, or while opening if the peer opened.
    var canReceiveData: Bool {
        !hasReceivedFIN && (phase == .established || (phase == .opening && !isOpener))
    }

    /// Whether this end may send DATA (and FIN) now: once established, or while opening if it opened.
    private var canSendData: Bool {
        phase == .established || (phase == .opening && isOpener)
    }

    /// FIN went both ways: the stream no longer needs its link, only to finish writing what it holds.
    var isDoneWithLink: Bool { hasSentFIN && hasReceivedFIN }

    var hasDownlinkThread: Bool {
        if case .thread = downlink { true } else { false }
    }

    var isWriting: Bool { downlink == .thread(isWriting: true) }

    /// OPEN_OK was sent or received. Returns `false` if the stream was reset first.
    mutating func establish() -> Bool {
        guard phase == .opening else { return false }
        phase = .established
        return true
    }

    /// The peer's FIN. Returns `false` if it is not allowed now (before our OPEN_OK, or a second FIN).
    mutating func receiveFIN() -> Bool {
        guard canReceiveData else { return false }
        hasReceivedFIN = true
        return true
    }

    /// We are about to send FIN. Returns `false` if the stream was reset or has sent FIN already.
    mutating func sendFIN() -> Bool {
        guard canSendData, !hasSentFIN else { return false }
        hasSentFIN = true
        return true
    }

    /// Aborts the stream. Returns `false` if it was already reset or has retired (nothing is left to abort).
    mutating func reset() -> Bool {
        guard phase != .reset, !isRetired else { return false }
        phase = .reset
        return true
    }

    /// Hands the downlink to a thread of its own. Only a direct downlink can be handed over.
    mutating func startDownlinkThread() {
        precondition(downlink == .direct, "the downlink is \(downlink)")
        downlink = .thread(isWriting: false)
    }

    /// The downlink thread could not be started: the downlink is direct again, so that whoever ends the stream
    /// ends it.
    mutating func downlinkThreadDidNotStart() {
        precondition(hasDownlinkThread, "no downlink thread was being started")
        downlink = .direct
    }

    /// The downlink thread enters or leaves send(2).
    mutating func setWriting(_ isWriting: Bool) {
        precondition(hasDownlinkThread, "only the downlink thread writes")
        downlink = .thread(isWriting: isWriting)
    }

    /// Ends the downlink when no thread of its own does it (the peer's FIN was written directly, the stream
    /// failed, or it never had a descriptor). Returns whether it ended now.
    mutating func endDirectDownlink() -> Bool {
        guard downlink == .direct else { return false }
        downlink = .done
        return true
    }

    /// The downlink thread has finished.
    mutating func endDownlinkThread() {
        precondition(hasDownlinkThread, "no downlink thread is running")
        downlink = .done
    }

    /// The uplink has finished; it finishes once.
    mutating func endUplink() {
        precondition(!isUplinkDone, "the uplink ended twice")
        isUplinkDone = true
    }

    /// Whether the caller must now close the descriptor and remove the stream: both directions have finished.
    /// `true` exactly once.
    mutating func retire() -> Bool {
        guard isUplinkDone, downlink == .done, !isRetired else { return false }
        isRetired = true
        return true
    }
}
