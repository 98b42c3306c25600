import HashTreeCollections

/// The streams of one link by id: a copy-on-write persistent hash trie swapped under a lock.
///
/// A lookup holds the lock for the few steps down the trie. Visiting every stream takes a snapshot (an O(1)
/// copy) under the lock and runs without it, so streams that end meanwhile (and remove themselves) never wait
/// for the visit; removals made while the snapshot is alive copy the nodes they change instead of changing
/// them in place. The snapshot is released under the lock again: a later removal that finds a node unique and
/// changes it in place is then ordered after every read of it through the lock, which ThreadSanitizer sees
/// (it does not see the Swift runtime's reference counts, which alone order them too).
///
/// `@unchecked Sendable`: `streams` is guarded by `lock`.
final class StreamTable: @unchecked Sendable {
    private let lock = PosixMutex()
    private var streams = TreeDictionary<StreamID, Stream>()

    /// The stream with `id`, if present.
    subscript(id: StreamID) -> Stream? {
        lock.lock()
        defer { lock.unlock() }
        return streams[id]
    }

    /// Calls `body` for every stream in the table as it is now, without holding the lock while `body` runs.
    func visitAll(_ body: (Stream) -> Void) {
        lock.lock()
        let snapshot = Snapshot(streams)
        lock.unlock()
        for stream in snapshot.streams.values { body(stream) }
        lock.lock()
        snapshot.streams = [:]  // stored in a box, so that the release happens here, not wherever the optimiser likes
        lock.unlock()
    }

    /// A snapshot held in a box. `@unchecked Sendable`: used by the one thread that made it.
    private final class Snapshot: @unchecked Sendable {
        var streams: TreeDictionary<StreamID, Stream>
        init(_ streams: TreeDictionary<StreamID, Stream>) { self.streams = streams }
    }

    /// Adds `stream` under its id.
    func insert(_ stream: Stream) {
        lock.lock()
        defer { lock.unlock() }
        streams[stream.id] = stream
    }

    /// Removes the stream with `id`, if present.
    func remove(_ id: StreamID) {
        lock.lock()
        defer { lock.unlock() }
        streams[id] = nil
    }

    /// The number of streams.
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return streams.count
    }
}
