import Logging

/// The remote agent's UDP flows: each one the peer opens gets a `TargetFlow`, within the agent's caps.
extension RemoteAgent {
    func link(_ link: Link, didOpenFlow id: FlowID, to target: StreamTarget, from origin: StreamOrigin?) -> ResetReason?
    {
        let flow = TargetFlow(
            id: id, link: link, target: target, allowList: allowList.withLock { $0 },
            idleTimeout: settings.udpIdleTimeout, limiter: flowLimiter, logger: link.logger)
        guard flowLimiter.admit(flow, from: IPNetwork.bytes(of: link.peer.host) ?? []) else {
            failures.log(link.logger, level: .warning, "refused UDP flow \(id) to \(target): \(flowLimiter.refusal)")
            return .tooManyStreams
        }
        guard link.attachFlow(id, to: flow) else {
            flowLimiter.release(flow)
            return .aborted
        }
        metrics.datagrams.countOpened()
        do {
            try WorkerPool.shared.run(named: "flow-\(id)") { flow.run() }
        } catch {
            link.logger.error("ending UDP flow \(id): \(error)")
            flowLimiter.release(flow)
            link.closeFlow(id, reason: .aborted)
        }
        return nil
    }

    /// UDP flows running now, across all links.
    public var flowCount: Int { flowLimiter.count }
}
