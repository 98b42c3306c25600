import Crypto

/// A remote agent's sessions by id, so that a connection can continue one (docs/PROTOCOL.md §10), and the ones
/// waiting to resume, in the order they began to wait, within their bounds: at most `maxDetached` of them holding
/// at most `maxDetachedBytes`, the longest waiting ended first to make room.
final class SessionTable: Sendable {
    private struct State {
        var byID: [[UInt8]: Link] = [:]
        /// Sessions waiting to resume, longest waiting first.
        var detached: [Link] = []
        /// Sessions a connection is continuing now, so that a second attempt at once does not interleave.
        var resuming: Set<ObjectIdentifier> = []
    }

    private let state = Locked(State())
    private let maxDetached: Int
    private let maxDetachedBytes: Int

    init(maxDetached: Int, maxDetachedBytes: Int) {
        self.maxDetached = maxDetached
        self.maxDetachedBytes = maxDetachedBytes
    }

    /// Registers the session `link` begins.
    func insert(_ link: Link) {
        guard let id = link.resumption?.id else { return }
        state.withLock { $0.byID[id] = link }
    }

    /// Forgets `link`, which has ended.
    func remove(_ link: Link) {
        state.withLock { state in
            if let id = link.resumption?.id, state.byID[id] === link { state.byID[id] = nil }
            state.detached.removeAll { $0 === link }
            state.resuming.remove(ObjectIdentifier(link))
        }
    }

    /// What `beginResuming` found.
    enum Lookup {
        /// The session, marked as resuming until `endResuming`.
        case found(Link)
        /// No session has that id.
        case unknown
        /// Another connection is continuing the session this moment.
        case busy
    }

    /// The session `id`, marked as resuming until `endResuming`, if there is one and no connection is
    /// continuing it already.
    func beginResuming(_ id: [UInt8]) -> Lookup {
        state.withLock { state in
            guard let link = state.byID[id] else { return .unknown }
            guard state.resuming.insert(ObjectIdentifier(link)).inserted else { return .busy }
            return .found(link)
        }
    }

    /// Ends what `beginResuming` began: the session runs on its new connection (`resumed`), or waits on. A
    /// session whose new connection was lost again meanwhile stays among the waiting ones.
    func endResuming(_ link: Link, resumed: Bool) {
        state.withLock { state in
            state.resuming.remove(ObjectIdentifier(link))
            if resumed && !link.isDetached { state.detached.removeAll { $0 === link } }
        }
    }

    /// Records that `link`'s session waits to resume, and returns the sessions that must end to keep the waiting
    /// ones within their bounds, longest waiting first (the caller ends them, outside this table's lock).
    func didDetach(_ link: Link) -> [Link] {
        state.withLock { state in
            // Checked under this lock: a link that closed has been removed, or will be after this.
            guard !link.isClosed else { return [] }
            if !state.detached.contains(where: { $0 === link }) { state.detached.append(link) }
            var evicted: [Link] = []
            var bytes = state.detached.reduce(0) { $0 + $1.heldBytes }
            while let oldest = state.detached.first,
                state.detached.count > maxDetached || (bytes > maxDetachedBytes && state.detached.count > 0)
            {
                state.detached.removeFirst()
                bytes -= oldest.heldBytes
                evicted.append(oldest)
            }
            return evicted
        }
    }

    /// Sessions waiting to resume now.
    var detachedCount: Int { state.withLock { $0.detached.count } }
}
