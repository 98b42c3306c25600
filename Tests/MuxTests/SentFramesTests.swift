import Testing

@testable import Mux

/// What one side keeps of what it sent until the peer acknowledges it (docs/PROTOCOL.md §10).
struct SentFramesTests {
    private func data(_ count: Int) -> OutboundFrame {
        let block = DataBlock()
        block.setCount(count)
        return .data(1, block)
    }

    @Test func anAcknowledgementForgetsTheFirstFramesAndHandsBackTheirBlocks() throws {
        var sent = SentFrames()
        for frame in [data(100), .frame(.fin(1)), data(200)] { sent.append(frame) }
        sent.markFlushed(upTo: 3)
        #expect(sent.sentCount == 3 && sent.payloadBytes == 300)
        let released = try sent.acknowledge(upTo: 2).get()
        #expect(released.count == 1 && released[0].count == 100)
        #expect(sent.acknowledged == 2 && sent.payloadBytes == 200 && sent.frames.count == 1)
        #expect(try sent.acknowledge(upTo: 2).get().isEmpty, "the same count again changes nothing")
    }

    @Test func anAcknowledgementBeyondWhatWasSentOrGoingBackIsRefusedAndChangesNothing() throws {
        var sent = SentFrames()
        sent.append(.frame(.fin(1)))
        sent.append(.frame(.fin(3)))
        sent.markFlushed(upTo: 1)
        #expect(throws: LinkError.protocolViolation("ACK of 2 frames when 1 were sent"), "kept, but not yet sent") {
            try sent.acknowledge(upTo: 2).get()
        }
        sent.markFlushed(upTo: 2)
        #expect(throws: LinkError.protocolViolation("ACK of 3 frames when 2 were sent")) {
            try sent.acknowledge(upTo: 3).get()
        }
        _ = try sent.acknowledge(upTo: 2).get()
        #expect(throws: LinkError.protocolViolation("ACK of 1 frames after an ACK of 2")) {
            try sent.acknowledge(upTo: 1).get()
        }
        #expect(sent.sentCount == 2 && sent.frames.isEmpty)
    }
}
