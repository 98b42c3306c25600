import Foundation
import Mux

/// Bulk echo through a route: every stream sends the test pattern for `seconds`, and reads back and
/// verifies every byte it sent. Throughput counts from the common start to the last byte back.
enum BulkLoad {
    static let chunk = 64 * 1024

    static func run(entry: Endpoint, streams: Int, seconds: Double, pattern: TestPattern) throws(BenchError)
        -> BulkReport
    {
        let gate = StartGate(expected: streams)
        let outcomes = try Workers.run(streams, named: "bench-bulk") { index -> StreamOutcome in
            let connection = Result { () throws(BenchError) in try LoadConnection.open(to: entry) }
            let start = gate.arriveAndWait()
            switch connection {
            case .failure(let error):
                return StreamOutcome(startedAt: start, sent: 0, finishedAt: .now, failure: error.description)
            case .success(let connection):
                defer { connection.close() }
                var outcome = exchange(
                    on: connection, stream: index, until: start + .seconds(seconds), pattern: pattern)
                outcome.startedAt = start
                return outcome
            }
        }
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

    /// Sends from a helper thread while this thread receives and verifies.
    private static func exchange(
        on connection: LoadConnection, stream: Int, until deadline: ContinuousClock.Instant, pattern: TestPattern
    ) -> StreamOutcome {
        let start = TestPattern.start(ofStream: stream)
        let sender = Locked<(sent: Int, done: Bool, failure: String?)>((0, false, nil))
        let senderDone = Completion()
        do {
            try startThread(named: "bench-send", stackSize: Workers.stackSize) {
                var sent = 0
                var failure: String?
                while ContinuousClock.now < deadline {
                    let error = pattern.withBytes(at: start + sent, upTo: chunk) { bytes -> SocketError? in
                        do throws(SocketError) {
                            try connection.socket.sendAll(bytes)
                        } catch {
                            return error
                        }
                        sent += bytes.count
                        return nil
                    }
                    if let error {
                        failure = "send failed after \(sent) bytes: \(error)"
                        break
                    }
                }
                sender.withLock { $0 = (sent, true, failure) }
                senderDone.complete()
            }
        } catch {
            return StreamOutcome(sent: 0, finishedAt: .now, failure: "load generator: \(error)")
        }
        var buffer = [UInt8](repeating: 0, count: chunk)
        var received = 0
        while true {
            let (sent, done, failure) = sender.withLock { $0 }
            if let failure { return StreamOutcome(sent: sent, finishedAt: .now, failure: failure) }
            if done, received == sent { return StreamOutcome(sent: sent, finishedAt: .now, failure: nil) }
            // Poll briefly rather than block: the sender may finish while every byte is already back.
            guard connection.waitUntilReadable(milliseconds: 50) else {
                if ContinuousClock.now > deadline + .seconds(LoadConnection.ioTimeout) {
                    connection.socket.shutdown(.both)
                    senderDone.wait(seconds: 60)
                    return StreamOutcome(
                        sent: sent, finishedAt: .now, failure: "only \(received) of \(sent) bytes echoed in time")
                }
                continue
            }
            let n = buffer.withUnsafeMutableBytes { try? connection.socket.receive(into: $0) }
            guard let n, n > 0 else {
                connection.socket.shutdown(.both)
                senderDone.wait(seconds: 60)
                let what = n == nil ? "receive failed (timeout or reset)" : "connection ended"
                return StreamOutcome(sent: sent, finishedAt: .now, failure: "\(what) after \(received) bytes echoed")
            }
            let intact = buffer.withUnsafeBytes {
                pattern.matches(UnsafeRawBufferPointer(rebasing: $0[..<n]), at: start + received)
            }
            guard intact else {
                connection.socket.shutdown(.both)
                senderDone.wait(seconds: 60)
                return StreamOutcome(sent: sent, finishedAt: .now, failure: "wrong bytes echoed at offset \(received)")
            }
            received += n
        }
    }
}
