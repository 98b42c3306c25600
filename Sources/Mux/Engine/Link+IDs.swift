/// The rules streams' and flows' ids share (PROTOCOL.md §6 and §6.3), each kind counting apart: the opener's
/// parity, ids that only increase, and frames for ids never opened.
extension Link {
    /// Streams' ids or flows' ids, and how protocol violations name them.
    enum IDSpace {
        case streams, flows

        var name: String { self == .streams ? "stream" : "flow" }
        var opening: String { self == .streams ? "OPEN" : "FLOW_OPEN" }
    }

    /// Records `id`, which the peer opened, as the highest it has opened in `space`. Throws for an id of ours or
    /// one that does not increase; returns whether the link takes it now (neither closing nor draining).
    func recordPeerOpened(_ id: UInt32, in space: IDSpace) throws(LinkError) -> Bool {
        guard !role.opens(id) else {
            throw .protocolViolation("\(space.opening) for \(space.name) \(id), an id of ours")
        }
        let isAccepting: Bool? = state.withLock { state in
            switch space {
            case .streams:
                guard id > state.highestPeerStreamID else { return nil }
                state.highestPeerStreamID = id
            case .flows:
                guard id > state.highestPeerFlowID else { return nil }
                state.highestPeerFlowID = id
            }
            return state.closeReason == nil && !state.isDraining
        }
        guard let isAccepting else {
            throw .protocolViolation("\(space.opening) for \(space.name) \(id) does not increase the \(space.name) id")
        }
        return isAccepting
    }

    /// Throws for a frame naming `id` in `space` when no such id was ever opened; frames for ids that have ended
    /// are the caller's to drop.
    func checkWasOpened(_ id: UInt32, in space: IDSpace) throws(LinkError) {
        let highest = state.withLock { state in
            switch space {
            case .streams: role.opens(id) ? state.nextStreamID - 1 : state.highestPeerStreamID
            case .flows: role.opens(id) ? state.nextFlowID - 1 : state.highestPeerFlowID
            }
        }
        guard id <= highest else { throw .protocolViolation("frame for \(space.name) \(id), which was never opened") }
    }
}
