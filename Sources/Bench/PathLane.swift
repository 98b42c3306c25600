import DequeModule
import Mux

/// One direction of the emulated path. A reader thread takes each packet from `source` and loses it at
/// random, or has the bottleneck (a `PathTimeline`) drop it when the queue is full, or queues it with the
/// instant it reaches the far end; a writer thread hands each queued packet to `destination` when it is due,
/// in order.
///
/// `@unchecked Sendable`: `inFlight`, `timeline`, `random`, `counts`, `isStopping` and `blackholedUntil` are
/// guarded by `condition`; each device is used by one thread of the lane.
final class PathLane: @unchecked Sendable {
    /// What the lane did with the packets it read.
    struct Counts: Sendable, Equatable {
        /// Packets read from the source.
        var packets = 0
        /// Lost at random.
        var lost = 0
        /// Dropped because the bottleneck queue was full.
        var dropped = 0
        /// Written to the destination.
        var delivered = 0
        /// Dropped while the path was black-holed.
        var blackholed = 0
    }

    private let source: TunDevice
    private let destination: TunDevice
    private let loss: Double
    private let condition = MonotonicCondition()
    private var inFlight = Deque<(due: ContinuousClock.Instant, packet: [UInt8])>()
    private var timeline: PathTimeline
    private var random: SeededGenerator
    private var counts = Counts()
    private var isStopping = false
    /// Until when every packet is dropped, as a path that fails silently drops them.
    private var blackholedUntil: ContinuousClock.Instant?
    private let readerEnded = Completion()
    private let writerEnded = Completion()

    /// A lane from `source` to `destination` shaped like `shape`; `seed` makes its random losses repeatable.
    init(from source: TunDevice, to destination: TunDevice, shape: EmulatedPathShape, seed: UInt64) {
        self.source = source
        self.destination = destination
        loss = shape.loss
        timeline = PathTimeline(
            delay: .seconds(shape.oneWayDelay), bytesPerSecond: shape.bytesPerSecond,
            queueLimit: shape.bytesPerSecond == nil ? nil : shape.queueBytes)
        random = SeededGenerator(seed: seed)
    }

    /// Starts the lane's two threads; if one cannot start, stops the other.
    func start() throws(BenchError) {
        let threads: [(name: String, work: @Sendable () -> Void, ended: Completion)] = [
            ("path-read", { [self] in readPackets() }, readerEnded),
            ("path-write", { [self] in writePackets() }, writerEnded),
        ]
        for (index, thread) in threads.enumerated() {
            do {
                try startThread(named: thread.name) {
                    thread.work()
                    thread.ended.complete()
                }
            } catch {
                for notStarted in threads[index...] { notStarted.ended.complete() }
                stop()
                throw BenchError("emulated path: \(error)")
            }
        }
    }

    /// Stops both threads and waits until they ended (the reader looks for the stop every 100 ms); packets
    /// still in flight are dropped.
    func stop() {
        condition.lock()
        isStopping = true
        inFlight.removeAll()
        condition.broadcast()
        condition.unlock()
        readerEnded.wait()
        writerEnded.wait()
    }

    /// Drops every packet read until `deadline`, and those in flight now.
    func blackhole(until deadline: ContinuousClock.Instant) {
        condition.lock()
        defer { condition.unlock() }
        blackholedUntil = deadline
        counts.blackholed += inFlight.count
        inFlight.removeAll()
    }

    /// What the lane has done so far.
    var totals: Counts {
        condition.lock()
        defer { condition.unlock() }
        return counts
    }

    private var stopping: Bool {
        condition.lock()
        defer { condition.unlock() }
        return isStopping
    }

    private func readPackets() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        defer { buffer.deallocate() }
        while !stopping {
            guard let size = source.read(into: buffer, timeoutMillis: 100) else { return }
            guard size > 0 else { continue }
            let packet = [UInt8](buffer[..<size])
            condition.lock()
            counts.packets += 1
            if let until = blackholedUntil, ContinuousClock.now < until {
                counts.blackholed += 1
            } else if loss > 0 && Double.random(in: 0..<1, using: &random) < loss {
                counts.lost += 1
            } else if let due = timeline.admit(size, at: .now) {
                inFlight.append((due, packet))
                condition.broadcast()
            } else {
                counts.dropped += 1
            }
            condition.unlock()
        }
    }

    private func writePackets() {
        condition.lock()
        defer { condition.unlock() }
        while !isStopping {
            guard let (due, packet) = inFlight.first else {
                condition.wait()
                continue
            }
            if due > .now {
                _ = condition.wait(until: due)
                continue
            }
            inFlight.removeFirst()
            counts.delivered += 1
            condition.unlock()
            destination.write(packet)
            condition.lock()
        }
    }
}
