import Glibc
import Mux

/// A paced datagram stream, as a game or a call sends: datagrams of `size` bytes offered at a steady rate for a
/// step's time through one flow and echoed back by the target; a receiver thread counts what returns. Rates start
/// at `firstRate` (1.5 MB/s, below a slow path's rate) and double while loss stays at or under 1 %, up to
/// `lastRate`: the highest rate with at most 1 % loss is what the route carries.
enum DatagramStreamLoad {
    static let size = 1_200
    static let firstRate = 1_250.0
    static let lastRate = 640_000.0
    /// How long a step waits after its last datagram for echoes still on their way.
    static let grace = 0.3
    /// The receive queue the load's and the echo target's sockets ask for, as the agents' do, so that what is
    /// lost is lost in the route, not in the load generator.
    static let receiveBuffer = 4 * 1024 * 1024

    static func run(entry: Endpoint, stepSeconds: Double) throws(BenchError) -> [DatagramStreamStep] {
        var steps: [DatagramStreamStep] = []
        var rate = firstRate
        while rate <= lastRate {
            let step = try measure(entry: entry, rate: rate, seconds: stepSeconds, step: UInt32(steps.count))
            steps.append(step)
            if step.lossPercent > 1 { break }
            rate *= 2
        }
        return steps
    }

    /// One step: sends `rate × seconds` datagrams, each numbered and marked with `step`, so that a late echo of
    /// an earlier step is never counted.
    private static func measure(entry: Endpoint, rate: Double, seconds: Double, step: UInt32) throws(BenchError)
        -> DatagramStreamStep
    {
        let socket: DatagramSocket
        do {
            socket = try DatagramSocket.connect(to: entry.resolve()[0])
        } catch {
            throw BenchError("datagram stream to \(entry): \(error)")
        }
        defer { socket.close() }
        socket.requestReceiveBuffer(receiveBuffer)
        let received = Locked(0)
        let stop = Locked(false)
        let finished = Completion()
        do {
            try startThread(named: "bench-datagram-echoes") {
                socket.socket.setReceiveTimeout(seconds: 0.05)
                var buffer = [UInt8](repeating: 0, count: size + 1)
                while !stop.withLock({ $0 }) {
                    guard let count = try? buffer.withUnsafeMutableBytes({ try socket.receive(into: $0).count }),
                        count == size,
                        buffer.withUnsafeBytes({ $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) }) == step
                    else { continue }
                    received.withLock { $0 += 1 }
                }
                finished.complete()
            }
        } catch {
            throw BenchError("load generator: \(error)")
        }
        var datagram = [UInt8](repeating: 0x5A, count: size)
        withUnsafeBytes(of: step) { bytes in for index in 0..<4 { datagram[4 + index] = bytes[index] } }
        let total = Int(rate * seconds)
        let start = ContinuousClock.now
        var sent = 0
        while sent < total {
            let due = min(total, Int(start.duration(to: .now).seconds * rate) + 1)
            while sent < due {
                RequestLoad.stamp(UInt32(sent), into: &datagram)
                _ = try? datagram.withUnsafeBytes { try socket.send($0) }
                sent += 1
            }
            sleep(seconds: 0.0005)
        }
        sleep(seconds: grace)
        stop.withLock { $0 = true }
        finished.wait()
        let back = received.withLock { $0 }
        return DatagramStreamStep(
            offeredPerSecond: rate, size: size, sent: sent, received: back,
            lossPercent: sent == 0 ? 0 : Double(sent - back) / Double(sent) * 100)
    }
}
