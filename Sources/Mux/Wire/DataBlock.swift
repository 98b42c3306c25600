/// One DATA frame's plaintext in memory of its own: room for the frame header, then up to
/// `Limits.maxDataPayload` bytes of payload. A stream receives its connection's bytes straight into the
/// payload, and the link's writer seals header and payload from here into its output: no copy and no
/// allocation per frame. Blocks are reused through a `DataBlockPool`.
///
/// `@unchecked Sendable`: a block has one owner at a time, handed over through the outbound queue's lock (the
/// stream's uplink fills it, the writer seals it, the pool keeps it in between).
final class DataBlock: @unchecked Sendable {
    private let base: UnsafeMutableRawPointer
    /// Payload bytes in use.
    private(set) var count = 0

    init() {
        base = .allocate(byteCount: Frame.headerSize + Limits.maxDataPayload, alignment: 16)
    }

    deinit {
        base.deallocate()
    }

    /// Where payload bytes go: `Limits.maxDataPayload` bytes of room.
    var room: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + Frame.headerSize, count: Limits.maxDataPayload)
    }

    /// Marks the first `count` bytes of `room` as the payload.
    func setCount(_ count: Int) {
        precondition((0...Limits.maxDataPayload).contains(count), "a DATA payload of \(count) bytes")
        self.count = count
    }

    /// The payload.
    var payload: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base + Frame.headerSize, count: count) }

    /// Writes the DATA header for stream `id` in front of the payload and returns the frame's whole plaintext.
    func plaintext(for id: StreamID) -> UnsafeRawBufferPointer {
        base.storeBytes(of: Frame.Kind.data.rawValue, as: UInt8.self)
        base.storeBytes(of: id.bigEndian, toByteOffset: 1, as: UInt32.self)
        return UnsafeRawBufferPointer(start: base, count: Frame.headerSize + count)
    }
}

/// The free `DataBlock`s of one link, so that frames in flight reuse memory instead of allocating it. Keeps at
/// most `limit` free blocks: enough for a writer batch and the streams refilling it, few enough that a link at
/// rest holds little. Thread-safe.
final class DataBlockPool: Sendable {
    private let free = Locked<[DataBlock]>([])
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// A block with no payload, reused if one is free.
    func take() -> DataBlock {
        let reused = free.withLock { $0.popLast() }
        guard let reused else { return DataBlock() }
        reused.setCount(0)
        return reused
    }

    /// Gives `block` back for reuse; its owner no longer touches it.
    func recycle(_ block: DataBlock) {
        free.withLock { blocks in
            if blocks.count < limit { blocks.append(block) }
        }
    }
}
