/// The links a local agent keeps (`--links` to each `--remote`), one slot each, and the choice of link for each
/// new stream: the open link with the fewest streams. Each slot's supervisor thread publishes its link as it comes
/// up and withdraws it when it stops taking streams; client threads wait here for one.
///
/// It also decides which link asks for the reverse forwards: one per remote agent instance (links behind a
/// load balancer reach different agents through one address). The first link up to an agent asks, and keeps
/// asking until it goes; then the lowest-numbered other open link to that agent takes over.
///
/// `@unchecked Sendable`: `slots`, `isStopping` and `nextStart` are guarded by `changed`.
final class LinkSet: @unchecked Sendable {
    /// One supervised link: where it goes, and what is known of it now.
    struct Slot: Sendable {
        /// 1, 2, … across every remote endpoint, in the order given: how logs and metrics name the link.
        let number: Int
        /// The remote endpoint this slot links to.
        let remote: Endpoint
        /// The link up now, if any.
        var link: Link?
        /// The remote agent instance the link reached (its AGENT_ID).
        var agentID: UInt64?
        /// The remote agent's latest answer to each reverse forward asked on this link.
        var listenResults: [UInt32: ListenResult] = [:]
        /// Whether this link asks for the reverse forwards of the agent it reaches.
        var asksForReverseForwards = false
    }

    private let changed = MonotonicCondition()
    private var slots: [Slot]
    private var isStopping = false
    /// Where the next choice starts looking, so that links with equally few streams take turns.
    private var nextStart = 0

    /// Where the links go, for log lines: `192.0.2.1:7000`, or `192.0.2.1:7000, 192.0.2.2:7000 (4 links each)`.
    let summary: String

    /// Slots for `linksPerRemote` links to each of `remotes`, numbered in that order.
    init(remotes: [Endpoint], linksPerRemote: Int) {
        precondition(!remotes.isEmpty && linksPerRemote >= 1, "a local agent links to at least one remote agent")
        let each = remotes.count == 1 ? "" : " each"
        summary =
            remotes.map(\.description).joined(separator: ", ")
            + (linksPerRemote == 1 ? "" : " (\(linksPerRemote) links\(each))")
        count = remotes.count * linksPerRemote
        slots = remotes.flatMap { remote in (0..<linksPerRemote).map { _ in remote } }.enumerated().map {
            Slot(number: $0.offset + 1, remote: $0.element)
        }
    }

    /// How many slots there are (fixed at init, so read without the lock); each index is stable for the agent's
    /// life.
    let count: Int

    /// The slot at `index` (0-based) as it is now.
    subscript(index: Int) -> Slot {
        changed.lock()
        defer { changed.unlock() }
        return slots[index]
    }

    /// Makes `link`, which reached remote agent `agentID`, the link of slot `index` and wakes waiting clients.
    /// Returns whether it now asks for that agent's reverse forwards (no other open link reaches it), or `nil`,
    /// publishing nothing, once `stop()` was called.
    func publish(_ link: Link, agentID: UInt64, at index: Int) -> Bool? {
        changed.lock()
        defer { changed.unlock() }
        guard !isStopping else { return nil }
        slots[index].link = link
        slots[index].agentID = agentID
        slots[index].listenResults = [:]
        slots[index].asksForReverseForwards = !slots.contains {
            $0.asksForReverseForwards && $0.agentID == agentID
        }
        changed.broadcast()
        return slots[index].asksForReverseForwards
    }

    /// Empties slot `index`, whose link stopped taking streams. Returns the link that now asks for the reverse
    /// forwards of the agent it reached, if it asked for them and another open link reaches the same agent.
    func withdraw(at index: Int) -> Link? {
        changed.lock()
        defer { changed.unlock() }
        let (agentID, wasAsking) = (slots[index].agentID, slots[index].asksForReverseForwards)
        slots[index].link = nil
        slots[index].listenResults = [:]
        slots[index].asksForReverseForwards = false
        guard wasAsking, let heir = slots.firstIndex(where: { $0.link != nil && $0.agentID == agentID }) else {
            return nil
        }
        slots[heir].asksForReverseForwards = true
        slots[heir].listenResults = [:]
        return slots[heir].link
    }

    /// Wakes the clients waiting for a link: one came back to taking streams (its session resumed on a new
    /// connection).
    func linkReopened() {
        changed.lock()
        defer { changed.unlock() }
        changed.broadcast()
    }

    /// Whether slot `index`'s link asks for the reverse forwards of the agent it reaches.
    func asksForReverseForwards(at index: Int) -> Bool {
        changed.lock()
        defer { changed.unlock() }
        return slots[index].asksForReverseForwards
    }

    /// The remote agent's answers to the reverse forwards asked on `link`; `nil` if `link` is in no slot.
    func listenResults(on link: Link) -> [UInt32: ListenResult]? {
        changed.lock()
        defer { changed.unlock() }
        return slots.first { $0.link === link }?.listenResults
    }

    /// Each answer to reverse forward `forward`, in slot order, from the links that ask for reverse forwards.
    func answers(to forward: UInt32) -> [ListenResult] {
        changed.lock()
        defer { changed.unlock() }
        return slots.compactMap { $0.asksForReverseForwards ? $0.listenResults[forward] : nil }
    }

    /// Records the remote agent's answer to a reverse forward asked on `link`; returns the answer before it.
    func record(_ result: ListenResult, forward: UInt32, on link: Link) -> ListenResult? {
        changed.lock()
        defer { changed.unlock() }
        guard let index = slots.firstIndex(where: { $0.link === link }) else { return nil }
        defer { slots[index].listenResults[forward] = result }
        return slots[index].listenResults[forward]
    }

    /// Forgets the answers for reverse forwards that were cancelled.
    func forgetResults(for forwards: some Sequence<UInt32>) {
        changed.lock()
        defer { changed.unlock() }
        for forward in forwards {
            for index in slots.indices { slots[index].listenResults[forward] = nil }
        }
    }

    /// Hands out no link from now on and wakes waiting clients; returns the links that were up.
    func stop() -> [Link] {
        changed.lock()
        defer { changed.unlock() }
        isStopping = true
        changed.broadcast()
        return slots.compactMap(\.link)
    }

    /// The links up now (some may have stopped taking streams since).
    var links: [Link] {
        changed.lock()
        defer { changed.unlock() }
        return slots.compactMap(\.link)
    }

    /// The links that ask for reverse forwards now, one per remote agent reached.
    var reverseForwardLinks: [Link] {
        changed.lock()
        defer { changed.unlock() }
        return slots.compactMap { $0.asksForReverseForwards ? $0.link : nil }
    }

    /// Waits up to `seconds` for a link that takes new streams and returns the one with the fewest streams; `nil`
    /// if none came or the agent is stopping.
    func await(seconds: Double) -> Link? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        changed.lock()
        defer { changed.unlock() }
        while !isStopping {
            if let link = leastLoaded() { return link }
            if !changed.wait(until: deadline) { break }
        }
        return nil
    }

    /// The open link with the fewest streams, scanning from `nextStart` so that ties take turns.
    private func leastLoaded() -> Link? {
        var best: (link: Link, streams: Int)?
        for offset in slots.indices {
            let index = (nextStart + offset) % slots.count
            guard let link = slots[index].link, link.isOpenForStreams else { continue }
            let streams = link.streamCount
            if best == nil || streams < best!.streams { best = (link, streams) }
        }
        nextStart = (nextStart + 1) % slots.count
        return best?.link
    }
}
