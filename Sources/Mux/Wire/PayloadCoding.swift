/// Appends big-endian integers and bytes to a payload buffer sized by `FrameCodec.encodedSize`.
struct PayloadWriter {
    private let base: UnsafeMutableRawPointer
    private var offset = 0

    init(_ base: UnsafeMutableRawPointer) {
        self.base = base
    }

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { (base + offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        offset += bytes.count
    }
}

/// Reads big-endian integers and bytes from a payload; running short is a malformed frame.
struct PayloadReader {
    private let bytes: UnsafeRawBufferPointer
    private let kind: Frame.Kind
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer, kind: Frame.Kind) {
        self.bytes = bytes
        self.kind = kind
    }

    func malformed(_ reason: String) -> FrameError { .malformed(kind, reason) }

    mutating func bytes(_ count: Int) throws(FrameError) -> [UInt8] {
        guard bytes.count - offset >= count else { throw malformed("payload ends early") }
        defer { offset += count }
        return [UInt8](UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]))
    }

    mutating func byte() throws(FrameError) -> UInt8 { try integer() }
    mutating func uint16() throws(FrameError) -> UInt16 { try integer() }
    mutating func uint32() throws(FrameError) -> UInt32 { try integer() }
    mutating func uint64() throws(FrameError) -> UInt64 { try integer() }

    private mutating func integer<T: FixedWidthInteger>() throws(FrameError) -> T {
        let size = MemoryLayout<T>.size
        guard bytes.count - offset >= size else { throw malformed("payload ends early") }
        var value: T = 0
        for i in 0..<size { value = value << 8 | T(bytes[offset + i]) }
        offset += size
        return value
    }

    /// Throws if bytes are left over.
    func expectEnd() throws(FrameError) {
        guard offset == bytes.count else { throw malformed("\(bytes.count - offset) bytes after the payload") }
    }
}
