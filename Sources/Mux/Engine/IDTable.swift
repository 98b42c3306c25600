import HashTreeCollections

/// The streams (or the flows) of one link by id: a copy-on-write persistent hash trie swapped under a lock.
///
/// A lookup holds the lock for the few steps down the trie. Visiting every entry takes a snapshot (an O(1)
/// copy) under the lock and runs without it, so entries that end meanwhile (and remove themselves) never wait
/// for the visit; removals made while the snapshot is alive copy the nodes they change instead of changing
/// them in place. The snapshot is released under the lock again: a later removal that finds a node unique and
/// changes it in place is then ordered after every read of it through the lock, which ThreadSanitizer sees
/// (it does not see the Swift runtime's reference counts, which alone order them too).
///
/// `@unchecked Sendable`: `entries` is guarded by `lock`.
final class IDTable<Entry>: @unchecked Sendable {
    private let lock = PosixMutex()
    private var entries = TreeDictionary<UInt32, Entry>()

    /// The entry with `id`, if present.
    subscript(id: UInt32) -> Entry? {
        lock.lock()
        defer { lock.unlock() }
        return entries[id]
    }

    /// Calls `body` for every entry in the table as it is now, without holding the lock while `body` runs.
    func visitAll(_ body: (Entry) -> Void) {
        lock.lock()
        let snapshot = Snapshot(entries)
        lock.unlock()
        for entry in snapshot.entries.values { body(entry) }
        lock.lock()
        snapshot.entries = [:]  // stored in a box, so that the release happens here, not wherever the optimiser likes
        lock.unlock()
    }

    /// A snapshot held in a box. `@unchecked Sendable`: used by the one thread that made it.
    private final class Snapshot: @unchecked Sendable {
        var entries: TreeDictionary<UInt32, Entry>
        init(_ entries: TreeDictionary<UInt32, Entry>) { self.entries = entries }
    }

    /// Adds `entry` under `id`.
    func insert(_ entry: Entry, at id: UInt32) {
        lock.lock()
        defer { lock.unlock() }
        entries[id] = entry
    }

    /// Removes and returns the entry with `id`, if present.
    @discardableResult
    func remove(_ id: UInt32) -> Entry? {
        lock.lock()
        defer { lock.unlock() }
        return entries.removeValue(forKey: id)
    }

    /// Removes and returns every entry.
    func removeAll() -> [Entry] {
        lock.lock()
        defer { lock.unlock() }
        defer { entries = [:] }
        return Array(entries.values)
    }

    /// The number of entries.
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return entries.count
    }
}
