/// A fixed-capacity byte buffer allocated once and filled with memcpy, for the per-frame paths of one thread.
/// Array operations on bytes are element by element in debug builds and allocate; this is neither.
///
/// Not thread-safe: owned by one thread (the link writer's encoder).
final class ByteBuffer {
    /// The start of the storage.
    let base: UnsafeMutableRawPointer
    /// The storage size.
    let capacity: Int
    /// Bytes in use, from `base`.
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        base.deallocate()
    }

    /// Room left after `count`.
    var available: Int { capacity - count }

    /// The bytes in use.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

extension Array where Element == UInt8 {
    /// A copy of `bytes`, made with one memcpy.
    init(copying bytes: UnsafeRawBufferPointer) {
        self.init(unsafeUninitializedCapacity: bytes.count) { buffer, initialized in
            if let source = bytes.baseAddress, bytes.count > 0 {
                UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: source, byteCount: bytes.count)
            }
            initialized = bytes.count
        }
    }
}
