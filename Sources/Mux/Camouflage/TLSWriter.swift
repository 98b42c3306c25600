/// Builds TLS structures: big-endian integers and length-prefixed vectors (RFC 8446 §3).
struct TLSWriter {
    private(set) var bytes: [UInt8] = []

    mutating func append(_ raw: [UInt8]) {
        bytes += raw
    }

    /// `data` behind its 16-bit length.
    mutating func append(u16Length data: [UInt8]) {
        bytes += Self.u16Length(data)
    }

    /// An extension: its 16-bit type, then `data` behind its 16-bit length.
    mutating func append(_ type: UInt16, u16Length data: [UInt8]) {
        bytes += Self.u16(type) + Self.u16Length(data)
    }

    static func u16(_ value: UInt16) -> [UInt8] {
        [UInt8(value >> 8), UInt8(value & 0xff)]
    }

    static func u24(_ value: Int) -> [UInt8] {
        precondition(value < 1 << 24, "a 24-bit length")
        return [UInt8(value >> 16), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
    }

    static func u16Length(_ data: [UInt8]) -> [UInt8] {
        precondition(data.count <= 0xffff, "a 16-bit length")
        return u16(UInt16(data.count)) + data
    }
}

/// Reads TLS structures out of bytes from anyone: every read is bounds-checked and returns `nil` instead of
/// trapping, so a stranger's hello costs at most a failed parse.
struct TLSReader {
    private let bytes: [UInt8]
    /// The offset of the next byte to read, from the start of the bytes given.
    private(set) var offset: Int
    private let end: Int

    /// A reader of `bytes[range]` (all of it by default).
    init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        self.bytes = bytes
        offset = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
    }

    var isAtEnd: Bool { offset == end }

    mutating func u8() -> UInt8? {
        guard offset < end else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() -> UInt16? {
        guard let high = u8(), let low = u8() else { return nil }
        return UInt16(high) << 8 | UInt16(low)
    }

    mutating func u24() -> Int? {
        guard let high = u8(), let rest = u16() else { return nil }
        return Int(high) << 16 | Int(rest)
    }

    /// The range of the next `count` bytes, which it skips.
    mutating func skip(_ count: Int) -> Range<Int>? {
        guard count >= 0, end - offset >= count else { return nil }
        defer { offset += count }
        return offset..<offset + count
    }

    /// The range of a vector behind an 8-bit length.
    mutating func u8Vector() -> Range<Int>? {
        guard let count = u8() else { return nil }
        return skip(Int(count))
    }

    /// The range of a vector behind a 16-bit length.
    mutating func u16Vector() -> Range<Int>? {
        guard let count = u16() else { return nil }
        return skip(Int(count))
    }

    /// The bytes at `range`.
    subscript(range: Range<Int>) -> ArraySlice<UInt8> { bytes[range] }
}
