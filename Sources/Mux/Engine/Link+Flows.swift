/// UDP flows on a link (docs/PROTOCOL.md §6.3): opened with FLOW_OPEN and used at once, their datagrams queued in
/// the outbound queue's datagram lane and dropped rather than waited for, forgotten with FLOW_CLOSE. The link
/// keeps each flow's end (`FlowEndpoint`) in `flows` and checks the ids; what a flow reaches is its agent's
/// business.
extension Link {
    /// Opens a flow to `target` for a client at `origin`: `endpoint` receives the peer's datagrams for it from now
    /// on, and FLOW_OPEN is queued, so that datagrams sent next follow it. Returns the flow's id, or `nil` when
    /// the link takes no new flows (closed, draining, or out of ids).
    func openFlow(to target: StreamTarget, from origin: StreamOrigin?, endpoint: any FlowEndpoint) -> FlowID? {
        state.withLock { state in
            guard state.closeReason == nil, !state.isDraining, !state.peerIsDraining, state.nextFlowID <= .max - 2
            else { return nil }
            let id = state.nextFlowID
            state.nextFlowID += 2
            // Both under `state`'s lock: `close` cannot miss the flow, and FLOW_OPENs reach the queue in id order.
            flows.insert(endpoint, at: id)
            queue.pushControl(.flowOpen(id, target: target, origin: origin))
            return id
        }
    }

    /// Registers `endpoint` as this side's end of the flow `id` the peer opened: its datagrams go there from now
    /// on. Returns `false` if the link has closed meanwhile.
    func attachFlow(_ id: FlowID, to endpoint: any FlowEndpoint) -> Bool {
        state.withLock { state in
            guard state.closeReason == nil else { return false }
            flows.insert(endpoint, at: id)
            return true
        }
    }

    /// Queues one datagram of flow `id`. Returns `false`, counting the drop, when the datagram lane is full or
    /// the link is closing.
    func sendDatagram(_ payload: [UInt8], on id: FlowID) -> Bool {
        guard queue.pushDatagram(payload, of: id) else {
            metrics.datagrams.recordDrop(.queueFull)
            return false
        }
        return true
    }

    /// Forgets flow `id` here and tells the peer why (FLOW_CLOSE); nothing if it is already gone.
    func closeFlow(_ id: FlowID, reason: ResetReason) {
        guard flows.remove(id) != nil else { return }
        queue.pushControl(.flowClose(id, reason))
    }

    /// Tells every flow the link has ended.
    func closeAllFlows() {
        for flow in flows.removeAll() { flow.linkDidClose() }
    }

    // MARK: Called by the reader thread

    /// The peer opened flow `id`: checks its id and hands it to the delegate, or refuses it (FLOW_CLOSE) when the
    /// link is draining or the delegate says so.
    func acceptFlow(id: FlowID, target: StreamTarget, origin: StreamOrigin?) throws(LinkError) {
        guard try recordPeerOpened(id, in: .flows), let delegate else { return try answer(.flowClose(id, .aborted)) }
        if let refusal = delegate.link(self, didOpenFlow: id, to: target, from: origin) {
            try answer(.flowClose(id, refusal))
        }
    }

    /// The peer forgot flow `id`.
    func receiveFlowClose(_ id: FlowID, reason: ResetReason) throws(LinkError) {
        if let flow = flows.remove(id) { return flow.receiveClose(reason) }
        try checkWasOpened(id, in: .flows)
    }

    /// The end of flow `id`, or `nil` for one that has ended (late datagrams are dropped). Throws for an id that
    /// was never opened.
    func flow(_ id: FlowID) throws(LinkError) -> (any FlowEndpoint)? {
        if let flow = flows[id] { return flow }
        try checkWasOpened(id, in: .flows)
        metrics.datagrams.recordDrop(.flowRefused)
        return nil
    }
}
