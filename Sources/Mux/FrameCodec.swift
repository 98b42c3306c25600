/// Frame plaintext encoding and decoding (docs/PROTOCOL.md, "Frames"). Pure: no crypto, no sockets.
package enum FrameCodec {
    /// The size of `frame`'s plaintext.
    package static func encodedSize(of frame: Frame) -> Int {
        switch frame {
        case .open, .openOK, .window: Frame.headerSize + 4
        case .data(_, let bytes): Frame.headerSize + bytes.count
        case .fin: Frame.headerSize
        case .reset, .goAway: Frame.headerSize + 1
        case .ping, .pong: Frame.headerSize + 8
        }
    }

    /// Writes `frame`'s plaintext (header then payload) to `output`, which must have room for
    /// `encodedSize(of: frame)` bytes.
    package static func encode(_ frame: Frame, into output: UnsafeMutableRawPointer) {
        output.storeBytes(of: frame.kind.rawValue, as: UInt8.self)
        output.storeBytes(of: frame.streamID.bigEndian, toByteOffset: 1, as: UInt32.self)
        let payload = output + Frame.headerSize
        switch frame {
        case .open(_, let window), .openOK(_, let window): payload.storeBytes(of: window.bigEndian, as: UInt32.self)
        case .data(_, let bytes):
            bytes.withUnsafeBytes { payload.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        case .fin: break
        case .reset(_, let reason): payload.storeBytes(of: reason.rawValue, as: UInt8.self)
        case .window(_, let increment): payload.storeBytes(of: increment.bigEndian, as: UInt32.self)
        case .ping(let value), .pong(let value): payload.storeBytes(of: value.bigEndian, as: UInt64.self)
        case .goAway(let reason): payload.storeBytes(of: reason.rawValue, as: UInt8.self)
        }
    }

    /// Decodes one complete frame plaintext. Throws for anything a correct peer never sends.
    package static func decode(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> Frame {
        guard bytes.count >= Frame.headerSize else { throw .tooShort(length: bytes.count) }
        guard let kind = Frame.Kind(rawValue: bytes[0]) else { throw .unknownKind(bytes[0]) }
        let id = readBigEndian(bytes, at: 1, as: UInt32.self)
        let payload = UnsafeRawBufferPointer(rebasing: bytes[Frame.headerSize...])

        func expect(size: Int) throws(FrameError) {
            guard payload.count == size else {
                throw .malformed(kind, "payload of \(payload.count) bytes, expected \(size)")
            }
        }
        func expectStream(_ isLinkLevel: Bool) throws(FrameError) {
            guard (id == 0) == isLinkLevel else {
                throw .malformed(kind, isLinkLevel ? "stream id \(id), expected 0" : "stream id 0")
            }
        }

        try expectStream(kind == .ping || kind == .pong || kind == .goAway)
        switch kind {
        case .open, .openOK, .window:
            try expect(size: 4)
            let value = readBigEndian(payload, at: 0, as: UInt32.self)
            if kind == .window { return .window(id, increment: value) }
            return kind == .open ? .open(id, window: value) : .openOK(id, window: value)
        case .data:
            guard !payload.isEmpty, payload.count <= Limits.maxDataPayload else {
                throw .malformed(kind, "payload of \(payload.count) bytes, expected 1 to \(Limits.maxDataPayload)")
            }
            return .data(id, [UInt8](copying: payload))
        case .fin:
            try expect(size: 0)
            return .fin(id)
        case .reset:
            try expect(size: 1)
            return .reset(id, ResetReason(rawValue: payload[0]) ?? .aborted)
        case .ping, .pong:
            try expect(size: 8)
            let value = readBigEndian(payload, at: 0, as: UInt64.self)
            return kind == .ping ? .ping(value) : .pong(value)
        case .goAway:
            try expect(size: 1)
            return .goAway(GoAwayReason(rawValue: payload[0]) ?? .other)
        }
    }

    private static func readBigEndian<T: FixedWidthInteger>(
        _ bytes: UnsafeRawBufferPointer, at offset: Int, as type: T.Type
    ) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size { value = value << 8 | T(bytes[offset + i]) }
        return value
    }
}
