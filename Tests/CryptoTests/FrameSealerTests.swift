import Crypto
import Testing

@Suite struct FrameSealerTests {
    let payload: [UInt8] = Array("a frame's plaintext, header and payload".utf8)

    private func directionPair() throws -> (FrameSealer, FrameOpener) {
        let key = try makeKey()
        let keys = try handshake(clientKey: key, serverKey: key)
        return (keys.client.clientSide().sealer, keys.server.serverSide().opener)
    }

    @Test func sealedFrameOpensToSamePlaintext() throws {
        var (sealer, opener) = try directionPair()
        let sealed = try seal(payload, with: &sealer)
        #expect(sealed.count == payload.count + SealedFrame.overhead)
        #expect(try open(sealed, with: &opener) == payload)
    }

    @Test func emptyAndLargePlaintextsRoundTrip() throws {
        var (sealer, opener) = try directionPair()
        for size in [0, 1, 32 * 1024 + 5] {
            let plaintext = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            #expect(try open(try seal(plaintext, with: &sealer), with: &opener) == plaintext)
        }
    }

    @Test func sealedBytesDoNotContainThePlaintextOrItsLength() throws {
        var (sealer, _) = try directionPair()
        let sealed = try seal(payload, with: &sealer)
        let lengthBytes: [UInt8] = [0, 0, 0, UInt8(payload.count)]
        #expect(!sealed.starts(with: lengthBytes))
        #expect(sealed.firstRange(of: payload[0..<8]) == nil)
    }

    @Test(arguments: [0, 3, 19, 20, 30, 59])
    func flippedByteAnywhereIsRejected(at index: Int) throws {
        var (sealer, opener) = try directionPair()
        var sealed = try seal(payload, with: &sealer)
        sealed[index] ^= 0x01
        #expect(throws: CryptoError.forged) { try open(sealed, with: &opener) }
    }

    @Test func replayedFrameIsRejected() throws {
        var (sealer, opener) = try directionPair()
        let sealed = try seal(payload, with: &sealer)
        _ = try open(sealed, with: &opener)
        #expect(throws: CryptoError.forged) { try open(sealed, with: &opener) }
    }

    @Test func reorderedFramesAreRejected() throws {
        var (sealer, opener) = try directionPair()
        _ = try seal(payload, with: &sealer)
        let second = try seal(payload, with: &sealer)
        #expect(throws: CryptoError.forged) { try open(second, with: &opener) }
    }

    @Test func truncatedBodyIsRejected() throws {
        var (sealer, opener) = try directionPair()
        let sealed = try seal(payload, with: &sealer)
        var truncatedOpener = opener
        #expect(throws: CryptoError.forged) { try open(Array(sealed.dropLast()), with: &truncatedOpener) }
        #expect(try open(sealed, with: &opener) == payload)
    }

    @Test func frameSealedForOtherDirectionIsRejected() throws {
        let key = try makeKey()
        let keys = try handshake(clientKey: key, serverKey: key)
        var clientSealer = keys.client.clientSide().sealer
        var clientOpener = keys.client.clientSide().opener
        let sealed = try seal(payload, with: &clientSealer)
        #expect(throws: CryptoError.forged) { try open(sealed, with: &clientOpener) }
    }
}
