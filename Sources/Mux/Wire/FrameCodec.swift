import Crypto

/// Frame plaintext encoding and decoding (docs/PROTOCOL.md, "Frames"). Pure: no crypto, no sockets.
package enum FrameCodec {
    /// The size of `frame`'s plaintext.
    package static func encodedSize(of frame: Frame) -> Int {
        switch frame {
        case .open(_, _, let target, let origin):
            Frame.headerSize + 4 + TargetCoding.size(of: target) + OriginCoding.size(of: origin)
        case .openOK, .window: Frame.headerSize + 4
        case .data(_, let bytes): Frame.headerSize + bytes.count
        case .fin: Frame.headerSize
        case .reset, .goAway: Frame.headerSize + 1
        case .ping, .pong, .agentID: Frame.headerSize + 8
        case .listen(_, _, let address): Frame.headerSize + 4 + 1 + TargetCoding.size(of: address)
        case .listenResult: Frame.headerSize + 4 + 1 + 2
        case .unlisten: Frame.headerSize + 4
        case .padding(let count): Frame.headerSize + count
        case .flowOpen(_, let target, let origin):
            Frame.headerSize + TargetCoding.size(of: target) + OriginCoding.size(of: origin)
        case .datagram(_, let bytes): Frame.headerSize + bytes.count
        case .flowClose: Frame.headerSize + 1
        case .ack: Frame.headerSize + 8
        case .session(.begin): Frame.headerSize + 1
        case .session(.resume): Frame.headerSize + 1 + SessionResumption.idSize + SessionResumption.proofSize + 8
        case .resumed: Frame.headerSize + 1 + 8
        }
    }

    /// Writes `frame`'s plaintext (header then payload) to `output`, which must have room for
    /// `encodedSize(of: frame)` bytes. A host in OPEN or LISTEN must be one `WireHost` accepts.
    package static func encode(_ frame: Frame, into output: UnsafeMutableRawPointer) {
        output.storeBytes(of: frame.kind.rawValue, as: UInt8.self)
        output.storeBytes(of: frame.streamID.bigEndian, toByteOffset: 1, as: UInt32.self)
        let payload = output + Frame.headerSize
        switch frame {
        case .open(_, let window, let target, let origin):
            var writer = PayloadWriter(payload)
            writer.append(window)
            TargetCoding.write(target, to: &writer)
            OriginCoding.write(origin, to: &writer)
        case .openOK(_, let window): payload.storeBytes(of: window.bigEndian, as: UInt32.self)
        case .data(_, let bytes):
            bytes.withUnsafeBytes { payload.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        case .fin: break
        case .reset(_, let reason): payload.storeBytes(of: reason.rawValue, as: UInt8.self)
        case .window(_, let increment): payload.storeBytes(of: increment.bigEndian, as: UInt32.self)
        case .ping(let value), .pong(let value), .agentID(let value):
            payload.storeBytes(of: value.bigEndian, as: UInt64.self)
        case .goAway(let reason): payload.storeBytes(of: reason.rawValue, as: UInt8.self)
        case .listen(let forward, let kind, let address):
            var writer = PayloadWriter(payload)
            writer.append(forward)
            writer.append(kind.ipProtocol)
            TargetCoding.write(address, to: &writer)
        case .listenResult(let forward, let result, let port):
            var writer = PayloadWriter(payload)
            writer.append(forward)
            writer.append(result.rawValue)
            writer.append(port)
        case .unlisten(let forward): payload.storeBytes(of: forward.bigEndian, as: UInt32.self)
        // Zeros: the frame is sealed, so its content is as random to an observer as any other.
        case .padding(let count): payload.initializeMemory(as: UInt8.self, repeating: 0, count: count)
        case .flowOpen(_, let target, let origin):
            var writer = PayloadWriter(payload)
            TargetCoding.write(target, to: &writer)
            OriginCoding.write(origin, to: &writer)
        case .datagram(_, let bytes):
            bytes.withUnsafeBytes { payload.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        case .flowClose(_, let reason): payload.storeBytes(of: reason.rawValue, as: UInt8.self)
        case .ack(let count): payload.storeBytes(of: count.bigEndian, as: UInt64.self)
        case .session(.begin): payload.storeBytes(of: SessionRequest.Mode.begin.rawValue, as: UInt8.self)
        case .session(.resume(let session, let proof, let received)):
            var writer = PayloadWriter(payload)
            writer.append(SessionRequest.Mode.resume.rawValue)
            writer.append(session)
            writer.append(proof)
            writer.append(received)
        case .resumed(let result, let received):
            var writer = PayloadWriter(payload)
            writer.append(result.rawValue)
            writer.append(received)
        }
    }

    /// A DATA or DATAGRAM frame's stream or flow id and payload, left in place in `bytes`, or `nil` for a frame
    /// of any other kind. Throws for a malformed one.
    package static func decodeInPlace(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> ReceivedFrame? {
        guard bytes.count >= Frame.headerSize, let kind = Frame.Kind(rawValue: bytes[0]),
            kind == .data || kind == .datagram
        else { return nil }
        let id = StreamID(bigEndian: bytes.loadUnaligned(fromByteOffset: 1, as: StreamID.self))
        guard id != 0 else { throw .malformed(kind, "stream id 0") }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[Frame.headerSize...])
        return kind == .data ? .data(id, try checkedDataPayload(payload)) : .datagram(id, try checkedDatagram(payload))
    }

    private static func checkedDatagram(_ payload: UnsafeRawBufferPointer) throws(FrameError)
        -> UnsafeRawBufferPointer
    {
        guard payload.count <= Limits.maxDatagram else {
            throw .malformed(.datagram, "payload of \(payload.count) bytes, expected at most \(Limits.maxDatagram)")
        }
        return payload
    }

    private static func checkedDataPayload(_ payload: UnsafeRawBufferPointer) throws(FrameError)
        -> UnsafeRawBufferPointer
    {
        guard !payload.isEmpty, payload.count <= Limits.maxDataPayload else {
            throw .malformed(.data, "payload of \(payload.count) bytes, expected 1 to \(Limits.maxDataPayload)")
        }
        return payload
    }

    /// Decodes one complete frame plaintext. Throws for anything a correct peer never sends.
    package static func decode(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> Frame {
        guard bytes.count >= Frame.headerSize else { throw .tooShort(length: bytes.count) }
        guard let kind = Frame.Kind(rawValue: bytes[0]) else { throw .unknownKind(bytes[0]) }
        var header = PayloadReader(bytes, kind: kind)
        _ = try header.byte()
        let id = try header.uint32()
        let payload = UnsafeRawBufferPointer(rebasing: bytes[Frame.headerSize...])
        var reader = PayloadReader(payload, kind: kind)

        func expect(size: Int) throws(FrameError) {
            guard payload.count == size else {
                throw .malformed(kind, "payload of \(payload.count) bytes, expected \(size)")
            }
        }
        guard (id == 0) == kind.isLinkLevel else {
            throw .malformed(kind, kind.isLinkLevel ? "stream id \(id), expected 0" : "stream id 0")
        }
        let frame: Frame
        switch kind {
        case .open:
            let window = try reader.uint32()
            let target = try TargetCoding.readTarget(&reader)
            frame = .open(id, window: window, target: target, origin: try OriginCoding.read(&reader))
        case .openOK, .window:
            try expect(size: 4)
            let value = try reader.uint32()
            frame = kind == .window ? .window(id, increment: value) : .openOK(id, window: value)
        case .data: return .data(id, [UInt8](copying: try checkedDataPayload(payload)))
        case .fin:
            try expect(size: 0)
            frame = .fin(id)
        case .reset:
            try expect(size: 1)
            frame = .reset(id, ResetReason(rawValue: try reader.byte()) ?? .aborted)
        case .ping, .pong, .agentID:
            try expect(size: 8)
            let value = try reader.uint64()
            frame = kind == .ping ? .ping(value) : kind == .pong ? .pong(value) : .agentID(value)
        case .goAway:
            try expect(size: 1)
            frame = .goAway(GoAwayReason(rawValue: try reader.byte()) ?? .other)
        case .listen:
            let forward = try reader.uint32()
            let number = try reader.byte()
            guard let kind = TrafficKind(ipProtocol: number) else {
                throw reader.malformed("IP protocol \(number), expected 6 (TCP) or 17 (UDP)")
            }
            frame = .listen(forward: forward, kind: kind, address: try TargetCoding.readAddress(&reader))
        case .listenResult:
            try expect(size: 7)
            let forward = try reader.uint32()
            let result = ListenResult(rawValue: try reader.byte()) ?? .failed
            frame = .listenResult(forward: forward, result, port: try reader.uint16())
        case .unlisten:
            try expect(size: 4)
            frame = .unlisten(forward: try reader.uint32())
        case .padding:
            guard payload.count <= Limits.maxPadding else {
                throw .malformed(kind, "payload of \(payload.count) bytes, expected at most \(Limits.maxPadding)")
            }
            return .padding(count: payload.count)
        case .flowOpen:
            let target = try TargetCoding.readTarget(&reader)
            frame = .flowOpen(id, target: target, origin: try OriginCoding.read(&reader))
        case .datagram: return .datagram(id, [UInt8](copying: try checkedDatagram(payload)))
        case .flowClose:
            try expect(size: 1)
            frame = .flowClose(id, ResetReason(rawValue: try reader.byte()) ?? .aborted)
        case .ack:
            try expect(size: 8)
            frame = .ack(try reader.uint64())
        case .session: frame = .session(try readSessionRequest(&reader))
        case .resumed:
            try expect(size: 9)
            let result = ResumeResult(rawValue: try reader.byte()) ?? .unknown
            frame = .resumed(result, received: try reader.uint64())
        }
        try reader.expectEnd()
        return frame
    }
}

extension FrameCodec {
    fileprivate static func readSessionRequest(_ reader: inout PayloadReader) throws(FrameError) -> SessionRequest {
        switch SessionRequest.Mode(rawValue: try reader.byte()) {
        case .begin: return .begin
        case .resume:
            let session = try reader.bytes(SessionResumption.idSize)
            let proof = try reader.bytes(SessionResumption.proofSize)
            return .resume(session: session, proof: proof, received: try reader.uint64())
        case nil: throw reader.malformed("unknown mode")
        }
    }
}

/// The wire form of targets and addresses (docs/PROTOCOL.md, "Targets"): a type byte, then the address in
/// binary or the name with its length, then the port.
enum TargetCoding {
    enum AddressType: UInt8 {
        case defaultTarget = 0
        case ipv4 = 1
        case name = 3
        case ipv6 = 4
        case reverseForward = 5
    }

    static func size(of target: StreamTarget) -> Int {
        switch target {
        case .defaultTarget: 1
        case .endpoint(let endpoint): size(of: endpoint)
        case .reverseForward: 1 + 4
        }
    }

    static func size(of endpoint: Endpoint) -> Int {
        switch wireHost(endpoint) {
        case .ipv4: 1 + 4 + 2
        case .ipv6: 1 + 16 + 2
        case .name(let bytes): 1 + 1 + bytes.count + 2
        }
    }

    static func write(_ target: StreamTarget, to writer: inout PayloadWriter) {
        switch target {
        case .defaultTarget: writer.append(AddressType.defaultTarget.rawValue)
        case .endpoint(let endpoint): write(endpoint, to: &writer)
        case .reverseForward(let id):
            writer.append(AddressType.reverseForward.rawValue)
            writer.append(id)
        }
    }

    static func write(_ endpoint: Endpoint, to writer: inout PayloadWriter) {
        switch wireHost(endpoint) {
        case .ipv4(let bytes):
            writer.append(AddressType.ipv4.rawValue)
            writer.append(bytes)
        case .ipv6(let bytes):
            writer.append(AddressType.ipv6.rawValue)
            writer.append(bytes)
        case .name(let bytes):
            writer.append(AddressType.name.rawValue)
            writer.append(UInt8(bytes.count))
            writer.append(bytes)
        }
        writer.append(endpoint.port)
    }

    static func readTarget(_ reader: inout PayloadReader) throws(FrameError) -> StreamTarget {
        let type = try reader.byte()
        switch AddressType(rawValue: type) {
        case .defaultTarget: return .defaultTarget
        case .reverseForward: return .reverseForward(try reader.uint32())
        default: return .endpoint(try readAddress(&reader, type: type))
        }
    }

    static func readAddress(_ reader: inout PayloadReader) throws(FrameError) -> Endpoint {
        try readAddress(&reader, type: try reader.byte())
    }

    private static func readAddress(_ reader: inout PayloadReader, type: UInt8) throws(FrameError) -> Endpoint {
        let host: WireHost
        switch AddressType(rawValue: type) {
        case .ipv4: host = .ipv4(try reader.bytes(4))
        case .ipv6: host = .ipv6(try reader.bytes(16))
        case .name:
            let name = try reader.bytes(Int(try reader.byte()))
            // An address sent as a name would encode back as an address: every host has one wire form.
            guard WireHost.isValidName(name), case .name = WireHost(String(decoding: name, as: UTF8.self)) else {
                throw reader.malformed("a host name that is not a DNS name")
            }
            host = .name(name)
        default: throw reader.malformed("unknown address type \(type)")
        }
        return Endpoint(host: host.text, port: try reader.uint16())
    }

    private static func wireHost(_ endpoint: Endpoint) -> WireHost {
        guard let host = WireHost(endpoint.host) else {
            preconditionFailure("\(endpoint) reached the wire without being validated")
        }
        return host
    }
}
