import Foundation
import Testing

@testable import Mux

@Suite struct OutboundQueueTests {
    @Test func controlFramesGoBeforeQueuedData() {
        let queue = OutboundQueue(dataLimit: 1 << 20)
        #expect(queue.pushData(.data(1, [1])))
        queue.pushControl(.window(2, increment: 10))
        guard case .frames(let frames) = queue.next(maxBytes: 1 << 20, idleTimeout: 1) else {
            Issue.record("expected frames")
            return
        }
        #expect(frames.map(\.asFrame) == [.window(2, increment: 10), .data(1, [1])])
    }

    @Test func answersBeyondTheLimitAreRefusedUntilTheWriterTakesSome() {
        let queue = OutboundQueue(dataLimit: 1024, answerLimit: 3)
        #expect((0..<3).allSatisfy { queue.pushAnswer(.pong(UInt64($0))) })
        #expect(!queue.pushAnswer(.pong(3)), "a fourth answer while three wait")
        queue.pushControl(.window(1, increment: 1))  // other control frames are not answers: never refused
        guard case .frames(let frames) = queue.next(maxBytes: 1024, idleTimeout: 1) else {
            Issue.record("expected frames")
            return
        }
        #expect(frames.map(\.asFrame) == [.pong(0), .pong(1), .pong(2), .window(1, increment: 1)])
        #expect(queue.pushAnswer(.pong(3)), "room again once the writer took them")
    }

    @Test func dataAndFINKeepTheirOrder() {
        let queue = OutboundQueue(dataLimit: 1 << 20)
        _ = queue.pushData(.data(1, [1]))
        _ = queue.pushData(.fin(1))
        _ = queue.pushData(.data(2, [2]))
        guard case .frames(let frames) = queue.next(maxBytes: 1 << 20, idleTimeout: 1) else {
            Issue.record("expected frames")
            return
        }
        #expect(frames.map(\.asFrame) == [.data(1, [1]), .fin(1), .data(2, [2])])
    }

    /// The frames `next` hands the writer, or [] if it reports anything else.
    private func batch(_ queue: OutboundQueue, maxBytes: Int) -> [Frame] {
        guard case .frames(let frames) = queue.next(maxBytes: maxBytes, idleTimeout: 1) else { return [] }
        return frames.map(\.asFrame)
    }

    private let chunk = [UInt8](repeating: 7, count: OutboundQueue.quantum)

    @Test func bulkStreamsTakeTurnsAFrameEach() {
        let queue = OutboundQueue(dataLimit: 1 << 20)
        for _ in 0..<3 {
            _ = queue.pushData(.data(1, chunk))
            _ = queue.pushData(.data(3, chunk))
        }
        _ = queue.pushData(.fin(1))
        let order = batch(queue, maxBytes: 1 << 20).map(\.streamID)
        #expect(order == [1, 3, 1, 3, 1, 3, 1])
    }

    /// Head-of-line blocking: a stream with one small frame waiting goes before the next chunk of each bulk
    /// stream that keeps the queue full, not behind everything they queued.
    @Test func aStreamWithOneSmallFrameGoesBeforeTheBulkStreamsNextChunks() {
        let queue = OutboundQueue(dataLimit: 1 << 20)
        for _ in 0..<8 {
            for bulk: StreamID in [1, 3, 5, 7] { _ = queue.pushData(.data(bulk, chunk)) }
        }
        #expect(batch(queue, maxBytes: 4 * chunk.count).count == 4)  // one turn each: now all backlogged
        _ = queue.pushData(.data(9, [1, 2, 3]))
        #expect(batch(queue, maxBytes: 1).first == .data(9, [1, 2, 3]))
    }

    @Test func aStreamWithNothingQueuedIsNotHeldBackByAFullQueue() throws {
        let queue = OutboundQueue(dataLimit: 100)
        #expect(queue.pushData(.data(1, [UInt8](repeating: 0, count: 100))))
        let pushed = Completion()
        try startThread(named: "pusher") {
            _ = queue.pushData(.data(3, [UInt8](repeating: 0, count: 80)))
            pushed.complete()
        }
        #expect(pushed.wait(seconds: 5), "stream 3 had nothing queued")
        let blocked = Completion()
        try startThread(named: "pusher") {
            _ = queue.pushData(.data(3, [1]))
            blocked.complete()
        }
        #expect(!blocked.wait(seconds: 0.2), "stream 3 now has data queued, and the queue is full")
        _ = batch(queue, maxBytes: 1 << 20)
        #expect(blocked.wait(seconds: 5))
    }

    @Test func idleQueueReportsIdleAfterTimeout() {
        let queue = OutboundQueue(dataLimit: 1024)
        guard case .idle = queue.next(maxBytes: 1024, idleTimeout: 0.05) else {
            Issue.record("expected idle")
            return
        }
    }

    @Test func fullQueueMakesDataPushersWaitUntilDrained() throws {
        let queue = OutboundQueue(dataLimit: 100)
        #expect(queue.pushData(.data(1, [UInt8](repeating: 0, count: 80))))
        let pushed = Completion()
        try startThread(named: "pusher") {
            _ = queue.pushData(.data(1, [UInt8](repeating: 0, count: 80)))
            pushed.complete()
        }
        #expect(!pushed.wait(seconds: 0.2))
        _ = queue.next(maxBytes: 10, idleTimeout: 1)
        #expect(pushed.wait(seconds: 5))
    }

    /// Fills `queue` (a limit of 10 bytes) with stream 1's data and starts a pusher of one more byte for it, which
    /// waits for room: what it returns, and when it has.
    private func waitingPusher(on queue: OutboundQueue) throws -> (result: Locked<Bool?>, done: Completion) {
        _ = queue.pushData(.data(1, [UInt8](repeating: 0, count: 10)))
        let result = Locked<Bool?>(nil)
        let started = Completion()
        let done = Completion()
        try startThread(named: "pusher") {
            started.complete()
            let accepted = queue.pushData(.data(1, [1]))
            result.withLock { $0 = accepted }
            done.complete()
        }
        // The pusher must be waiting before the test goes on: a push after a close would fail without waiting.
        #expect(started.wait(seconds: 5))
        #expect(!done.wait(seconds: 0.2), "the pusher waits for room")
        return (result, done)
    }

    @Test func closeWakesWaitingPusherWithFailure() throws {
        let queue = OutboundQueue(dataLimit: 10)
        let pusher = try waitingPusher(on: queue)
        queue.close()
        #expect(pusher.done.wait(seconds: 5))
        #expect(pusher.result.withLock { $0 } == false)
    }

    /// A stream reset while its uplink waits for room: the uplink leaves at once, queueing nothing (it waited until
    /// the writer freed room or the link died), the stream's queued data goes, and only its RESET is sent.
    @Test func resettingAStreamWakesItsWaitingPusherAndDropsItsData() throws {
        let queue = OutboundQueue(dataLimit: 10)
        _ = queue.pushData(.data(3, [3]))
        let pusher = try waitingPusher(on: queue)
        queue.resetStream(1, sending: .reset(1, .aborted))
        #expect(pusher.done.wait(seconds: 5))
        #expect(pusher.result.withLock { $0 } == false)
        #expect(batch(queue, maxBytes: 1 << 20) == [.reset(1, .aborted), .data(3, [3])])
    }

    /// An uplink that read its bytes just before its stream was reset cannot queue them behind the RESET.
    @Test func aResetStreamsDataIsRefusedUntilTheStreamIsForgotten() {
        let queue = OutboundQueue(dataLimit: 1 << 20)
        queue.resetStream(1, sending: .reset(1, .aborted))
        #expect(!queue.pushData(.data(1, [1])))
        #expect(!queue.pushData(.fin(1)))
        #expect(queue.pushData(.data(3, [3])))
        #expect(batch(queue, maxBytes: 1 << 20) == [.reset(1, .aborted), .data(3, [3])])
        queue.forget(1)
        #expect(queue.pushData(.data(1, [1])), "ids are never reused; forgetting only frees the memory")
    }

    @Test func finishedQueueDrainsThenCloses() {
        let queue = OutboundQueue(dataLimit: 1024)
        queue.pushControl(.goAway(.shutdown))
        queue.finish()
        queue.pushControl(.ping(1))
        guard case .frames(let frames) = queue.next(maxBytes: 1024, idleTimeout: 1) else {
            Issue.record("expected frames")
            return
        }
        #expect(frames.map(\.asFrame) == [.goAway(.shutdown)])
        guard case .closed = queue.next(maxBytes: 1024, idleTimeout: 1) else {
            Issue.record("expected closed")
            return
        }
    }

    // MARK: The datagram lane

    @Test func aDatagramTakesItsTurnAheadOfStreamsThatStayedBackedUp() {
        let queue = OutboundQueue(dataLimit: 1 << 20)
        for _ in 0..<3 { _ = queue.pushData(.data(1, chunk)) }
        #expect(batch(queue, maxBytes: OutboundQueue.quantum).map(\.streamID) == [1], "stream 1 used its turn")
        #expect(queue.pushDatagram([1, 2, 3], of: 7))
        let order = batch(queue, maxBytes: 1 << 20)
        #expect(order.first == .datagram(7, [1, 2, 3]), "a sparse lane goes first, as a newcomer")
        #expect(order.dropFirst().map(\.streamID) == [1, 1])
    }

    @Test func aDatagramThatFindsTheLaneFullIsRefusedAndNothingWaits() {
        let queue = OutboundQueue(dataLimit: 1 << 20, datagramLimit: 100)
        #expect(queue.pushDatagram([UInt8](repeating: 1, count: 60), of: 1))
        #expect(!queue.pushDatagram([UInt8](repeating: 2, count: 41), of: 1), "101 bytes would exceed the lane")
        #expect(queue.pushDatagram([UInt8](repeating: 3, count: 40), of: 3), "exactly full is allowed")
        #expect(batch(queue, maxBytes: 1 << 20).map(\.streamID) == [1, 3])
        #expect(queue.pushDatagram([UInt8](repeating: 4, count: 100), of: 5), "room again once the writer took them")
    }

    @Test func datagramsOfEveryFlowKeepTheirOrder() {
        let queue = OutboundQueue(dataLimit: 1 << 20)
        let sent: [Frame] = (0..<6).map { index in .datagram(index % 2 == 0 ? 1 : 3, [UInt8(index)]) }
        for case .datagram(let flow, let bytes) in sent { _ = queue.pushDatagram(bytes, of: flow) }
        #expect(batch(queue, maxBytes: 1 << 20) == sent)
    }

    @Test func aDatagramIsStaleOnlyAfterTheLongestWait() {
        let queued = QueuedDatagram(flow: 1, payload: [], queuedAt: MonotonicClock.nanoseconds())
        let longest = UInt64(Limits.maxDatagramWait.nanoseconds)
        #expect(!queued.isStale(at: queued.queuedAt + longest))
        #expect(queued.isStale(at: queued.queuedAt + longest + 1_000_000))
    }
}

extension OutboundQueue {
    /// Queues a DATA or FIN frame as its stream's uplink would: DATA's bytes in a block of their own.
    fileprivate func pushData(_ frame: Frame) -> Bool {
        switch frame {
        case .data(let id, let bytes): pushData(.data(DataBlock(copying: bytes)), of: id)
        case .fin(let id): pushData(.fin, of: id)
        default: preconditionFailure("only DATA and FIN are stream data")
        }
    }
}

@Suite struct DataBlockPoolTests {
    @Test func aRecycledBlockIsTakenAgainEmpty() {
        let pool = DataBlockPool(limit: 2)
        let block = DataBlock(copying: [1, 2, 3])
        pool.recycle(block)
        let taken = pool.take()
        #expect(taken === block)
        #expect(taken.count == 0)
    }

    @Test func thePoolKeepsNoMoreThanItsLimit() {
        let pool = DataBlockPool(limit: 2)
        let blocks = (0..<3).map { _ in DataBlock() }
        for block in blocks { pool.recycle(block) }
        let taken = (0..<3).map { _ in pool.take() }
        #expect(taken[0] === blocks[1] && taken[1] === blocks[0], "the two kept, last in first out")
        #expect(!blocks.contains { $0 === taken[2] }, "a new block beyond them")
    }
}
