/// The one link a local agent's new clients use, and the wait for it: the link supervisor publishes each link
/// as it comes up and withdraws it when it stops taking streams; client threads wait for one.
///
/// `@unchecked Sendable`: `link` and `isStopping` are guarded by `changed`.
final class CurrentLink: @unchecked Sendable {
    private let changed = MonotonicCondition()
    private var link: Link?
    private var isStopping = false

    /// Makes `link` (or none) the one new clients use and wakes waiting clients. Returns `false`, publishing
    /// nothing, once `stop()` was called.
    func publish(_ link: Link?) -> Bool {
        changed.lock()
        defer { changed.unlock() }
        guard !isStopping else { return false }
        self.link = link
        changed.broadcast()
        return true
    }

    /// Hands out no link from now on and wakes waiting clients; returns the link that was current.
    func stop() -> Link? {
        changed.lock()
        defer { changed.unlock() }
        isStopping = true
        changed.broadcast()
        return link
    }

    /// The link published now, if any (it may have stopped taking streams since).
    var current: Link? {
        changed.lock()
        defer { changed.unlock() }
        return link
    }

    /// Waits up to `seconds` for a link that takes new streams; `nil` if none came or the agent is stopping.
    func await(seconds: Double) -> Link? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        changed.lock()
        defer { changed.unlock() }
        while !isStopping {
            if let link, link.isOpenForStreams { return link }
            if !changed.wait(until: deadline) { break }
        }
        return nil
    }
}
