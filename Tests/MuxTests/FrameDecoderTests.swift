import Crypto
import Testing

@testable import Mux

@Suite struct FrameDecoderTests {
    /// A sealer and the decoder that opens what it seals.
    private func pair() throws -> (FrameSealer, FrameDecoder) {
        let key = try PreSharedKey(base64: PreSharedKey.generateBase64(), source: "test")
        let client = try ClientHandshake(key: key, nowMillis: 1_800_000_000_000)
        let (reply, serverKeys) = try ServerHandshake.verify(client.hello, keys: [key], nowMillis: 1_800_000_000_000)
            .respond()
        let clientKeys = try client.receive(serverHello: reply)
        return (clientKeys.clientSide().sealer, FrameDecoder(opener: serverKeys.serverSide().opener))
    }

    private func sealed(_ frames: [Frame], with sealer: FrameSealer) throws -> [UInt8] {
        var encoder = FrameEncoder(sealer: sealer)
        for frame in frames { try encoder.append(OutboundFrame(frame)) }
        return Array(encoder.output.bytes)
    }

    @Test func framesArriveInOrderWhateverTheChunking() throws {
        var (sealer, decoder) = try pair()
        let frames: [Frame] = [
            .open(1, window: 100, target: .defaultTarget, origin: nil), .data(1, Array(repeating: 7, count: 5000)),
            .fin(1),
            .ping(3),
        ]
        let bytes = try sealed(frames, with: sealer)
        var decoded: [Frame] = []
        for chunk in stride(from: 0, to: bytes.count, by: 777) {
            decoder.receive(Array(bytes[chunk..<min(chunk + 777, bytes.count)]))
            while let frame = try decoder.nextFrame() { decoded.append(frame) }
        }
        #expect(decoded == frames)
    }

    @Test func dataIsHandedOverInPlaceAndEveryOtherFrameAsAValue() throws {
        var (sealer, decoder) = try pair()
        let payload = (0..<Limits.maxDataPayload).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let frames: [Frame] = [.data(5, payload), .window(5, increment: 9), .data(7, [1]), .datagram(3, [2, 4])]
        decoder.receive(try sealed(frames, with: sealer))
        var received: [String] = []
        while let frame = try decoder.nextReceivedFrame() {
            switch frame {
            case .data(let id, let bytes): received.append("data \(id) \(Array(bytes) == (id == 5 ? payload : [1]))")
            case .datagram(let id, let bytes): received.append("datagram \(id) \(Array(bytes))")
            case .other(let frame): received.append("\(frame)")
            }
        }
        #expect(received == ["data 5 true", "\(Frame.window(5, increment: 9))", "data 7 true", "datagram 3 [2, 4]"])
    }

    @Test func incompleteFrameAsksForMoreBytes() throws {
        var (sealer, decoder) = try pair()
        let bytes = try sealed([.data(1, [1, 2, 3])], with: sealer)
        decoder.receive(Array(bytes.dropLast()))
        let beforeLastByte = try decoder.nextFrame()
        #expect(beforeLastByte == nil)
        decoder.receive([bytes.last!])
        let afterLastByte = try decoder.nextFrame()
        #expect(afterLastByte == .data(1, [1, 2, 3]))
    }

    @Test func tamperedFrameIsForged() throws {
        var (sealer, decoder) = try pair()
        var bytes = try sealed([.data(1, [1, 2, 3])], with: sealer)
        bytes[bytes.count - 3] ^= 0x40
        decoder.receive(bytes)
        #expect(throws: FrameError.forged) { try decoder.nextFrame() }
    }

    @Test func replayedFrameIsForged() throws {
        var (sealer, decoder) = try pair()
        let bytes = try sealed([.ping(1)], with: sealer)
        decoder.receive(bytes + bytes)
        let original = try decoder.nextFrame()
        #expect(original == .ping(1))
        #expect(throws: FrameError.forged) { try decoder.nextFrame() }
    }

    @Test func oversizedFrameIsRefusedFromItsLengthBlockAlone() throws {
        var (sealer, decoder) = try pair()
        let body = [UInt8](repeating: 3, count: Limits.maxFrameBody + 1)
        var oversized = [UInt8](repeating: 0, count: body.count + SealedFrame.overhead)
        try body.withUnsafeBytes { raw in
            try oversized.withUnsafeMutableBytes { try sealer.seal(raw, into: $0.baseAddress!) }
        }
        decoder.receive(Array(oversized.prefix(SealedFrame.lengthBlockSize)))
        #expect(throws: FrameError.tooLong(length: Limits.maxFrameBody + 1, limit: Limits.maxFrameBody)) {
            try decoder.nextFrame()
        }
    }
}
