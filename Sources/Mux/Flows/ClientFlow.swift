/// One client of a UDP forward (`-L …/udp`, or a SOCKS5 association) and one target, as its forward keeps them:
/// the flow the client's datagrams travel on, and the address its replies go back to, from the forward's socket.
///
/// Threads: the forward's thread sends the client's datagrams (`send`); the link's reader delivers the replies
/// (`receiveDatagram`) and the peer's FLOW_CLOSE. `state` is guarded by its lock.
final class ClientFlow: FlowEndpoint, LimitedFlow {
    enum State {
        /// Its FLOW_OPEN is being queued.
        case opening
        case open(Link, FlowID)
        /// The remote agent refused it: the client's datagrams are dropped here until it is idle for the idle
        /// timeout, so that a client that keeps sending does not open a refused flow per datagram.
        case refused(ResetReason)
        case closed
    }

    /// The client's address, where replies go.
    let client: ResolvedAddress
    /// Where the client's datagrams go, as the peer reaches it.
    let target: StreamTarget
    let key: FlowKey
    let activity = FlowActivity()
    private let forward: UDPForwarder
    private let state = Locked(State.opening)

    init(client: ResolvedAddress, target: StreamTarget, key: FlowKey, forward: UDPForwarder) {
        self.client = client
        self.target = target
        self.key = key
        self.forward = forward
    }

    /// Records that FLOW_OPEN went out on `link` as flow `id` (unless the flow was refused or closed meanwhile).
    func opened(on link: Link, as id: FlowID) {
        state.withLock { state in
            if case .opening = state { state = .open(link, id) }
        }
    }

    /// Sends one datagram of the client on the flow; returns whether it was queued (a drop is counted).
    @discardableResult
    func send(_ payload: UnsafeRawBufferPointer) -> Bool {
        activity.touchToTarget()
        switch state.withLock({ $0 }) {
        case .open(let link, let id):
            guard link.sendDatagram(Array(payload), on: id) else { return false }
            forward.metrics.countToTarget(bytes: payload.count)
            return true
        case .opening, .refused, .closed:
            forward.metrics.recordDrop(.flowRefused)
            return false
        }
    }

    /// Ends the flow here and on the remote agent: idle for the timeout, evicted at a cap, or the forward stopping.
    func close() {
        let previous = state.withLock { state in
            defer { state = .closed }
            return state
        }
        if case .open(let link, let id) = previous { link.closeFlow(id, reason: .aborted) }
        forward.forget(self)
    }

    // MARK: FlowEndpoint and LimitedFlow

    func receiveDatagram(_ payload: UnsafeRawBufferPointer) {
        activity.touchToClient()
        forward.sendToClient(payload, of: self)
    }

    func receiveClose(_ reason: ResetReason) {
        guard reason != .aborted else {
            // The remote agent ended it (idle there, or evicted): the client's next datagram opens a new flow.
            state.withLock { $0 = .closed }
            return forward.forget(self)
        }
        state.withLock { $0 = .refused(reason) }
        forward.recordRefusal(reason, of: self)
    }

    func linkDidClose() {
        state.withLock { $0 = .closed }
        forward.forget(self)
    }

    func evict() { close() }
}

/// A client's address and port, and the target it sends to: what tells a UDP forward's flows apart.
struct FlowKey: Hashable {
    let address: [UInt8]
    let port: UInt16
    let target: StreamTarget

    init(_ address: ResolvedAddress, target: StreamTarget) {
        self.address = address.addressBytes
        port = address.port
        self.target = target
    }
}
