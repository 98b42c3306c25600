import Logging

/// How a stopping agent ends its links, the same for both agents: every link at once, under deadlines shared by
/// all of them, so a stop takes at most the drain timeout plus twice `Limits.linkCloseWait` however many links
/// there are (one by one, ten dead links outlasted systemd's 30 s stop timeout).
enum LinkDrain {
    /// Sends GOAWAY on every link of `links`, lets their streams finish until `drainTimeout` seconds from now,
    /// resets the rest, and closes each link once its peer has closed its side or `Limits.linkCloseWait` passes.
    static func run(_ links: [Link], drainTimeout: Double, logger: Logger) {
        for link in links { link.beginDrain() }
        let open = links.reduce(0) { $0 + $1.streamCount }
        if open > 0 { logger.info("letting \(open) streams finish (up to \(Int(drainTimeout)) s)") }
        let drained = ContinuousClock.now + .seconds(drainTimeout)
        let unfinished = links.filter { !$0.waitUntilDrained(deadline: drained) }
        if !unfinished.isEmpty {
            logger.warning("drain timeout: resetting \(unfinished.reduce(0) { $0 + $1.streamCount }) streams")
        }
        for link in links { link.resetAndFinish() }
        let answered = ContinuousClock.now + .seconds(Limits.linkCloseWait)
        let silent = links.filter { !$0.closeUnlessFinished(by: answered) }
        if !silent.isEmpty { logger.info("closed \(silent.count) links whose peers did not close theirs") }
        let closed = ContinuousClock.now + .seconds(Limits.linkCloseWait)
        for link in silent { link.waitUntilFinished(deadline: closed) }
    }
}
