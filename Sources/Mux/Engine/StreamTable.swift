import Foundation
import HashTreeCollections

/// The streams of one link by id: a copy-on-write persistent hash trie swapped under a lock.
///
/// The reader thread takes a snapshot (an O(1) copy) under the lock and looks streams up in it without the
/// lock; inserts made while a snapshot is alive share structure with it instead of copying the table.
///
/// `@unchecked Sendable`: `streams` is guarded by `lock`.
final class StreamTable: @unchecked Sendable {
    private let lock = NSLock()
    private var streams = TreeDictionary<StreamID, Stream>()

    /// An immutable view of the table at this instant.
    func snapshot() -> TreeDictionary<StreamID, Stream> {
        lock.lock()
        defer { lock.unlock() }
        return streams
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
