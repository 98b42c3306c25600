/// One end of a UDP flow on a link: what the link's reader hands the peer's datagrams and closes to. Each method
/// is called on the link's reader thread (`linkDidClose` on whichever thread ends the link) and must not block.
protocol FlowEndpoint: AnyObject, Sendable {
    /// One datagram the peer sent on this flow, whole; `payload` is valid only during the call.
    func receiveDatagram(_ payload: UnsafeRawBufferPointer)
    /// The peer forgot the flow (FLOW_CLOSE) for `reason`; the link has already removed it.
    func receiveClose(_ reason: ResetReason)
    /// The link ended, and the flow with it; the link has already removed it.
    func linkDidClose()
}
