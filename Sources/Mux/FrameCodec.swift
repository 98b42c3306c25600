/// Frame plaintext encoding and decoding (docs/PROTOCOL.md, "Frames"). Pure: no crypto, no sockets.
enum FrameCodec {
    /// Appends `frame`'s plaintext (header then payload) to `output`.
    static func encode(_ frame: Frame, into output: inout [UInt8]) {
        output.append(frame.kind.rawValue)
        appendBigEndian(frame.streamID, to: &output)
        switch frame {
        case .open(_, let window), .openOK(_, let window): appendBigEndian(window, to: &output)
        case .data(_, let bytes): output.append(contentsOf: bytes)
        case .fin: break
        case .reset(_, let reason): output.append(reason.rawValue)
        case .window(_, let increment): appendBigEndian(increment, to: &output)
        case .ping(let value), .pong(let value): appendBigEndian(value, to: &output)
        case .goAway(let reason): output.append(reason.rawValue)
        }
    }

    /// Decodes one complete frame plaintext. Throws for anything a correct peer never sends.
    static func decode(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> Frame {
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
            return .data(id, Array(payload))
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

    private static func appendBigEndian<T: FixedWidthInteger>(_ value: T, to output: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { output.append(contentsOf: $0) }
    }

    private static func readBigEndian<T: FixedWidthInteger>(
        _ bytes: UnsafeRawBufferPointer, at offset: Int, as type: T.Type
    ) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size { value = value << 8 | T(bytes[offset + i]) }
        return value
    }
}
