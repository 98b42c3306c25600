import Mux

/// Bulk echo through a route: every stream sends the test pattern for `seconds`, and reads back and
/// verifies every byte it sent. Throughput counts from the common start to the last byte back.
enum BulkLoad {
    static let chunk = 64 * 1024

    static func run(entry: Endpoint, streams: Int, seconds: Double, pattern: TestPattern) throws(BenchError)
        -> BulkReport
    {
        let outcomes = try Workers.runConnected(
            streams, to: entry, named: "bench-bulk",
            failed: { error, start in
                StreamOutcome(startedAt: start, sent: 0, finishedAt: .now, failure: error.description)
            },
            each: { index, connection, start in
                var outcome = exchange(
                    on: connection, stream: index, streams: streams, until: start + .seconds(seconds), pattern: pattern)
                outcome.startedAt = start
                return outcome
            })
        let failures = outcomes.compactMap(\.failure)
        let bytes = outcomes.reduce(0) { $0 + $1.sent }
        let started = outcomes.map(\.startedAt).min() ?? .now
        let elapsed = outcomes.map { started.duration(to: $0.finishedAt) }.max()?.seconds ?? 0
        return BulkReport(
            megabytesPerSecond: elapsed > 0 ? Double(bytes) / elapsed / 1e6 : 0, bytes: bytes, seconds: elapsed,
            verified: failures.isEmpty, failedStreams: failures.count, firstFailure: failures.first)
    }

    struct StreamOutcome: Sendable {
        var startedAt: ContinuousClock.Instant = .now
        var sent: Int
        var finishedAt: ContinuousClock.Instant
        var failure: String?
    }

    /// Sends from a helper thread while this thread receives and verifies. The sender keeps at most
    /// `inFlightLimit` bytes unechoed, as an application with bounded buffers would: otherwise the kernel's
    /// socket buffers (megabytes per connection) would hold a backlog that takes longer to drain than the load.
    private static func exchange(
        on connection: LoadConnection, stream: Int, streams: Int, until deadline: ContinuousClock.Instant,
        pattern: TestPattern
    ) -> StreamOutcome {
        let start = TestPattern.start(ofStream: stream)
        let progress = EchoProgress(inFlightLimit: max(256 << 10, (64 << 20) / streams))
        let senderDone = Completion()
        do {
            try startThread(named: "bench-send", stackSize: Workers.stackSize) {
                while progress.waitForRoom(until: deadline) {
                    let sent = progress.snapshot.sent
                    let error = pattern.withBytes(at: start + sent, upTo: chunk) { bytes -> SocketError? in
                        do throws(SocketError) {
                            try connection.socket.sendAll(bytes)
                        } catch {
                            return error
                        }
                        progress.didSend(bytes.count)
                        return nil
                    }
                    if let error {
                        progress.finishSending(failure: "send failed after \(sent) bytes: \(error)")
                        senderDone.complete()
                        return
                    }
                }
                progress.finishSending(failure: nil)
                senderDone.complete()
            }
        } catch {
            return StreamOutcome(sent: 0, finishedAt: .now, failure: "load generator: \(error)")
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        func fail(_ failure: String) -> StreamOutcome {
            connection.socket.shutdown(.both)
            senderDone.wait(seconds: 60)
            return StreamOutcome(sent: progress.snapshot.sent, finishedAt: .now, failure: failure)
        }
        while true {
            let (sent, received, done, failure) = progress.snapshot
            if let failure { return fail(failure) }
            if done, received == sent { return StreamOutcome(sent: sent, finishedAt: .now, failure: nil) }
            // Poll briefly rather than block: the sender may finish while every byte is already back.
            guard connection.waitUntilReadable(milliseconds: 50) else {
                if ContinuousClock.now > deadline + .seconds(LoadConnection.ioTimeout) {
                    return fail("only \(received) of \(sent) bytes echoed in time")
                }
                continue
            }
            guard let n = try? connection.socket.receive(into: buffer), n > 0 else {
                return fail("connection ended or failed after \(received) bytes echoed")
            }
            guard pattern.matches(UnsafeRawBufferPointer(rebasing: buffer[..<n]), at: start + received) else {
                return fail("wrong bytes echoed at offset \(received)")
            }
            progress.didReceive(n)
        }
    }
}

/// One bulk stream's counters, shared by its sender and receiver threads under `condition`.
private final class EchoProgress: @unchecked Sendable {  // every var is guarded by `condition`
    private let condition = MonotonicCondition()
    private let inFlightLimit: Int
    private var sent = 0
    private var received = 0
    private var isDone = false
    private var failure: String?

    init(inFlightLimit: Int) {
        self.inFlightLimit = inFlightLimit
    }

    var snapshot: (sent: Int, received: Int, done: Bool, failure: String?) {
        condition.lock()
        defer { condition.unlock() }
        return (sent, received, isDone, failure)
    }

    /// Waits until fewer than the limit of bytes are unechoed; false once `deadline` has passed.
    func waitForRoom(until deadline: ContinuousClock.Instant) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while sent - received >= inFlightLimit, ContinuousClock.now < deadline {
            _ = condition.wait(until: min(deadline, .now + .milliseconds(50)))
        }
        return ContinuousClock.now < deadline
    }

    func didSend(_ count: Int) {
        condition.lock()
        sent += count
        condition.unlock()
    }

    func didReceive(_ count: Int) {
        condition.lock()
        received += count
        condition.broadcast()
        condition.unlock()
    }

    func finishSending(failure: String?) {
        condition.lock()
        isDone = true
        self.failure = failure
        condition.unlock()
    }
}
