/// The remote agent's UDP flows: each one a local agent opens gets a `TargetFlow`, within the agent's caps, to a
/// target its allow rules cover for UDP.
extension RemoteAgent {
    func link(_ link: Link, didOpenFlow id: FlowID, to target: StreamTarget, from origin: StreamOrigin?) -> ResetReason?
    {
        let allowList = self.allowList.withLock { $0 }
        return TargetFlow.accept(
            id, on: link, to: target, idleTimeout: settings.udpIdleTimeout, limiter: flowLimiter,
            logger: link.logger, warnings: failures
        ) { allowList.decide(target, kind: .udp) }
    }

    /// UDP flows running now, across all links.
    public var flowCount: Int { flowLimiter.count }
}
