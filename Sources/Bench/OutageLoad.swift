import FoundationEssentials
import Glibc
import Mux

/// Outages under load: bulk echo streams and one interactive stream run through a route while its link is broken
/// `outages` times, `seconds` apart: its TCP connection killed (`ss -K`) as a middlebox resets one, or, across
/// the emulated path, every packet dropped both ways for a while. Each outage's pause is measured on the
/// interactive stream, from the outage's end to its first round trip after it; a stream that a route cannot
/// carry through an outage fails, which the report says.
enum OutageLoad {
    /// How the link is broken.
    enum Cause: Sendable, CustomStringConvertible {
        /// The client side's connection to `link` is killed (SOCK_DESTROY); the kernel resets it both ways.
        case kill(link: Endpoint, scratch: URL)
        /// The emulated path drops every packet both ways for `seconds`.
        case blackhole(EmulatedPath, seconds: Double)

        var description: String {
            switch self {
            case .kill: "connection killed (ss -K)"
            case .blackhole(_, let seconds):
                "path black-holed for \(seconds == seconds.rounded() ? String(Int(seconds)) : BenchRunner.format(seconds)) s"
            }
        }

        /// How long the outage lasts before the path carries packets again.
        var seconds: Double {
            if case .blackhole(_, let seconds) = self { seconds } else { 0 }
        }

        /// Breaks the link once, returning when the outage is over.
        func apply() throws(BenchError) {
            switch self {
            case .kill(let link, let scratch):
                let ss = try ChildProcess(
                    "ss -K", executable: "ss",
                    arguments: [
                        "-K", "-t", "-n", "state", "established", "dst", link.host, "dport", "=", ":\(link.port)",
                    ],
                    scratch: scratch)
                guard ss.waitUntilExit() else { throw BenchError("ss -K failed: \(ss.logTail)") }
            case .blackhole(let path, let seconds):
                path.blackhole(seconds: seconds)
                sleep(seconds: seconds)
            }
        }
    }

    static func run(
        entry: Endpoint, cause: Cause, outages: Int, bulkStreams: Int, seconds: Double, messageSize: Int,
        pattern: TestPattern
    ) throws(BenchError) -> OutageReport {
        let total = Double(outages + 1) * seconds + Double(outages) * cause.seconds
        let deadline = ContinuousClock.now + .seconds(total)
        let probe = InteractiveProbe()
        let outageEnds = Locked<[ContinuousClock.Instant]>([])
        let outageFailure = Locked<String?>(nil)
        let finished = (probe: Completion(), outages: Completion())
        do {
            try startThread(named: "bench-probe") {
                probe.run(entry: entry, until: deadline, messageSize: messageSize)
                finished.probe.complete()
            }
            try startThread(named: "bench-outage") {
                for _ in 0..<outages {
                    sleep(seconds: seconds)
                    if case .failure(let error) = Result(catching: { () throws(BenchError) in try cause.apply() }) {
                        outageFailure.withLock { $0 = error.description }
                        break
                    }
                    outageEnds.withLock { $0.append(.now) }
                }
                finished.outages.complete()
            }
        } catch {
            throw BenchError("load generator: \(error)")
        }
        let bulk = try BulkLoad.run(entry: entry, streams: bulkStreams, seconds: total, pattern: pattern)
        finished.outages.wait()
        finished.probe.wait()
        if let failure = outageFailure.withLock({ $0 }) { throw BenchError(failure) }
        let (roundTrips, completions, failure) = probe.result
        let pauses = outageEnds.withLock { $0 }.map { end in
            completions.first { $0 > end }.map { ($0 - end).seconds * 1000 }
        }
        return OutageReport(
            cause: cause.description, outages: outages, pausesMilliseconds: pauses, interactiveRoundTrips: roundTrips,
            interactiveFailure: failure, bulk: bulk)
    }
}

/// The interactive stream of an outage load: round trips of `messageSize` bytes every 10 ms, each checked, and the
/// instant each one completed.
private final class InteractiveProbe: Sendable {
    private let state = Locked((completions: [ContinuousClock.Instant](), failure: String?.none))

    func run(entry: Endpoint, until deadline: ContinuousClock.Instant, messageSize: Int) {
        let connection: LoadConnection
        do {
            connection = try LoadConnection.open(to: entry)
        } catch {
            return state.withLock { $0.failure = error.description }
        }
        defer { connection.close() }
        connection.socket.setNoDelay()
        var request = [UInt8](repeating: 7, count: messageSize)
        var response = [UInt8](repeating: 0, count: messageSize)
        var sequence: UInt32 = 0
        while ContinuousClock.now < deadline {
            sequence &+= 1
            RequestLoad.stamp(sequence, into: &request)
            guard (try? connection.socket.sendAll(request)) != nil,
                response.withUnsafeMutableBytes({ connection.receiveExactly($0) }), response == request
            else {
                return state.withLock { $0.failure = "round trip \(sequence) failed: the stream was reset or stalled" }
            }
            state.withLock { $0.completions.append(.now) }
            sleep(seconds: 0.01)
        }
    }

    var result: (roundTrips: Int, completions: [ContinuousClock.Instant], failure: String?) {
        state.withLock { ($0.completions.count, $0.completions, $0.failure) }
    }
}

/// What outages cost a route's streams.
public struct OutageReport: Codable, Sendable {
    /// How the link was broken, e.g. `connection killed (ss -K)`.
    public var cause: String
    public var outages: Int
    /// For each outage, milliseconds from its end to the interactive stream's next round trip; `nil` when none came.
    public var pausesMilliseconds: [Double?]
    /// Round trips the interactive stream completed, each echoed exactly.
    public var interactiveRoundTrips: Int
    /// Why the interactive stream ended early, if it did.
    public var interactiveFailure: String?
    /// The bulk streams beside it: `verified` says every byte came back exactly.
    public var bulk: BulkReport

    /// Whether every stream went on through every outage with every byte.
    public var survived: Bool {
        interactiveFailure == nil && bulk.verified && pausesMilliseconds.allSatisfy { $0 != nil }
    }
}
