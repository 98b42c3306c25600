/// What a link hands to the agent that owns it. Every method is called on the link's reader thread (except
/// `linkDidClose`, called once on whichever link thread ends last, or on the thread that closed a link with no
/// connection) and must not block.
protocol LinkDelegate: AnyObject, Sendable {
    /// The peer opened `stream` to `target` for a client that connected from `origin`, if the peer knows it. The
    /// delegate answers it, later and on another thread, with `stream.accept(_:)` or `stream.refuse(_:)`.
    func link(_ link: Link, didOpen stream: Stream, to target: StreamTarget, from origin: StreamOrigin?)
    /// The peer opened UDP flow `id` to `target` for a client at `origin`, and may already be sending its
    /// datagrams. The delegate either registers its end of the flow with `link.attachFlow(_:to:)` and returns
    /// `nil`, or returns the reason it refuses the flow, which the link sends back in FLOW_CLOSE.
    func link(_ link: Link, didOpenFlow id: FlowID, to target: StreamTarget, from origin: StreamOrigin?) -> ResetReason?
    /// Remote role: the peer asks this agent to listen on `address` for its reverse forward `forward`, of
    /// `kind`. The delegate answers with a LISTEN_RESULT frame.
    func link(_ link: Link, didRequestListen address: Endpoint, kind: TrafficKind, forward: UInt32)
    /// Remote role: the peer no longer wants its reverse forward `forward`.
    func link(_ link: Link, didCancelListen forward: UInt32)
    /// Local role: the remote agent answered our LISTEN for reverse forward `forward`.
    func link(_ link: Link, didAnswerListen forward: UInt32, result: ListenResult, port: UInt16)
    /// The link lost its connection and its session waits to resume (`Link.connectionFailed`); called on the
    /// link thread that saw the loss.
    func linkDidDetach(_ link: Link)
    /// The link has fully ended (both threads stopped, socket closed), for the first `reason` it ended for.
    func linkDidClose(_ link: Link, reason: LinkError)
}
