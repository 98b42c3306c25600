import Glibc

/// The bytes the bulk load sends: a fixed pseudo-random block that every stream walks from its own
/// offset, so that a byte lost, duplicated, reordered or swapped between streams fails verification.
struct TestPattern: Sendable {
    /// Length of the block; a prime-sized stride between streams keeps their offsets apart.
    static let length = 1 << 20
    let bytes: [UInt8]

    init() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var bytes = [UInt8](repeating: 0, count: Self.length)
        for index in bytes.indices {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            bytes[index] = UInt8(truncatingIfNeeded: state)
        }
        self.bytes = bytes
    }

    /// Where stream `stream` starts in the block.
    static func start(ofStream stream: Int) -> Int { (stream &* 4099) % length }

    /// Calls `body` with the next up-to-`count` pattern bytes at `position`, without wrapping.
    func withBytes<R>(at position: Int, upTo count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let offset = position % Self.length
        let available = min(count, Self.length - offset)
        return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + available])) }
    }

    /// Whether `received` equals the pattern from `position` on.
    func matches(_ received: UnsafeRawBufferPointer, at position: Int) -> Bool {
        var checked = 0
        while checked < received.count {
            let same = withBytes(at: position + checked, upTo: received.count - checked) { expected in
                memcmp(expected.baseAddress!, received.baseAddress! + checked, expected.count) == 0
                    ? expected.count : -1
            }
            guard same > 0 else { return false }
            checked += same
        }
        return true
    }
}
