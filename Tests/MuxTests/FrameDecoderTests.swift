import Crypto
import Testing

@testable import Mux

@Suite struct FrameDecoderTests {
    private func pair() throws -> (FrameEncoder, FrameDecoder) {
        let key = try PreSharedKey(base64: PreSharedKey.generateBase64(), source: "test")
        let client = ClientHandshake(key: key, now: 1_800_000_000)
        let (reply, serverKeys) = try ServerHandshake.respond(to: client.hello, key: key, now: 1_800_000_000)
        let clientKeys = try client.receive(serverHello: reply)
        return (FrameEncoder(sealer: clientKeys.clientSide().sealer), FrameDecoder(opener: serverKeys.serverSide().opener))
    }

    private func sealed(_ frames: [Frame], with encoder: inout FrameEncoder) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for frame in frames { try encoder.append(frame, to: &bytes) }
        return bytes
    }

    @Test func framesArriveInOrderWhateverTheChunking() throws {
        var (encoder, decoder) = try pair()
        let frames: [Frame] = [.open(1, window: 100), .data(1, Array(repeating: 7, count: 5000)), .fin(1), .ping(3)]
        let bytes = try sealed(frames, with: &encoder)
        var decoded: [Frame] = []
        for chunk in stride(from: 0, to: bytes.count, by: 777) {
            decoder.receive(Array(bytes[chunk..<min(chunk + 777, bytes.count)]))
            while let frame = try decoder.nextFrame() { decoded.append(frame) }
        }
        #expect(decoded == frames)
    }

    @Test func incompleteFrameAsksForMoreBytes() throws {
        var (encoder, decoder) = try pair()
        let bytes = try sealed([.data(1, [1, 2, 3])], with: &encoder)
        decoder.receive(Array(bytes.dropLast()))
        let result1 = try decoder.nextFrame()
        #expect(result1 == nil)
        decoder.receive([bytes.last!])
        let result2 = try decoder.nextFrame()
        #expect(result2 == .data(1, [1, 2, 3]))
    }

    @Test func tamperedFrameIsForged() throws {
        var (encoder, decoder) = try pair()
        var bytes = try sealed([.data(1, [1, 2, 3])], with: &encoder)
        bytes[bytes.count - 3] ^= 0x40
        decoder.receive(bytes)
        #expect(throws: FrameError.forged) { try decoder.nextFrame() }
    }

    @Test func replayedFrameIsForged() throws {
        var (encoder, decoder) = try pair()
        let bytes = try sealed([.ping(1)], with: &encoder)
        decoder.receive(bytes + bytes)
        let result3 = try decoder.nextFrame()
        #expect(result3 == .ping(1))
        #expect(throws: FrameError.forged) { try decoder.nextFrame() }
    }

    @Test func oversizedFrameIsRefusedFromItsLengthBlockAlone() throws {
        var (encoder, decoder) = try pair()
        var oversized: [UInt8] = []
        var sealer = try Self.rawSealer(from: &encoder)
        let body = [UInt8](repeating: 3, count: Limits.maxFrameBody + 1)
        try body.withUnsafeBytes { try sealer.seal($0, appendingTo: &oversized) }
        decoder.receive(Array(oversized.prefix(SealedFrame.lengthBlockSize)))
        #expect(throws: FrameError.tooLong(length: Limits.maxFrameBody + 1, limit: Limits.maxFrameBody)) {
            try decoder.nextFrame()
        }
    }

    /// The sealer inside an encoder, to seal bodies a correct encoder never produces.
    private static func rawSealer(from encoder: inout FrameEncoder) throws -> FrameSealer {
        let mirror = Mirror(reflecting: encoder)
        return try #require(mirror.children.first { $0.label == "sealer" }?.value as? FrameSealer)
    }
}
