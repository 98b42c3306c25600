/// What the emulated path between the benchmark's two network namespaces does to each packet, each way:
/// delays it, sends it no faster than a rate through a bottleneck queue of a given size (drop-tail), and
/// loses a share of packets at random.
public struct EmulatedPathShape: Codable, Sendable, Equatable, CustomStringConvertible {
    /// One-way delay, in seconds.
    public var oneWayDelay: Double
    /// The bottleneck's rate each way, in bytes per second; nil for no cap.
    public var bytesPerSecond: Double?
    /// The share of packets lost each way, from 0 to 1.
    public var loss: Double
    /// The bottleneck queue, in bytes: a packet that would not fit is dropped.
    public var queueBytes: Int

    /// The queue when none is given: a quarter of a megabyte, a common router buffer.
    public static let defaultQueueBytes = 256 * 1024

    public init(oneWayDelay: Double, bytesPerSecond: Double? = nil, loss: Double = 0, queueBytes: Int? = nil) {
        self.oneWayDelay = oneWayDelay
        self.bytesPerSecond = bytesPerSecond
        self.loss = loss
        self.queueBytes = queueBytes ?? Self.defaultQueueBytes
    }

    /// Parses a comma-separated list whose parts are told apart by their units, in any order: a one-way
    /// delay (`25ms`, `0.1s`, required), a rate (`10MB/s`, `500KB/s`, `80Mbit/s`), a loss (`1%`) and a
    /// bottleneck queue (`256KiB`, `1MiB`, `65536B`); e.g. `25ms,10MB/s,1%,256KiB`.
    public init(parsing text: String) throws(BenchError) {
        var delay: Double?
        var rate: Double?
        var loss = 0.0
        var queue: Int?
        for part in text.split(separator: ",").map({ $0.trimmed }) {
            guard let (number, unit) = Self.split(part) else { throw Self.invalid(text, part) }
            switch unit {
            case "ms": delay = number / 1000
            case "s": delay = number
            case "B/s": rate = number
            case "KB/s": rate = number * 1e3
            case "MB/s": rate = number * 1e6
            case "GB/s": rate = number * 1e9
            case "kbit/s", "Kbit/s": rate = number * 1e3 / 8
            case "Mbit/s": rate = number * 1e6 / 8
            case "Gbit/s": rate = number * 1e9 / 8
            case "%":
                guard number < 100 else { throw BenchError("--path: a loss of \(part) lets nothing through") }
                loss = number / 100
            case "B": queue = Int(number)
            case "KiB": queue = Int(number * 1024)
            case "MiB": queue = Int(number * 1_048_576)
            default: throw Self.invalid(text, part)
            }
        }
        guard let delay else { throw BenchError("--path '\(text)' needs a one-way delay, e.g. 25ms") }
        guard delay <= 10 else { throw BenchError("--path: a one-way delay of more than 10 s is not a path") }
        if let rate, rate < 10_000 { throw BenchError("--path: a rate below 10 KB/s is too slow to measure") }
        if let queue, queue < 2048 { throw BenchError("--path: a queue below 2 KiB cannot hold two packets") }
        self.init(oneWayDelay: delay, bytesPerSecond: rate, loss: loss, queueBytes: queue)
    }

    /// `25 ms each way, 10 MB/s, 1 % loss, 256 KiB queue`.
    public var description: String {
        var parts = ["\(Self.format(oneWayDelay * 1000)) ms each way"]
        if let bytesPerSecond { parts.append("\(Self.format(bytesPerSecond / 1e6)) MB/s") }
        if loss > 0 { parts.append("\(Self.format(loss * 100)) % loss") }
        if bytesPerSecond != nil { parts.append("\(queueBytes / 1024) KiB queue") }
        return parts.joined(separator: ", ")
    }

    /// `12.5` → ("12.5", unit after it); nil when the part does not start with a non-negative number.
    private static func split(_ part: String) -> (Double, String)? {
        let digits = part.prefix { $0.isNumber || $0 == "." }
        guard let number = Double(digits), number >= 0, number.isFinite else { return nil }
        return (number, String(part.dropFirst(digits.count)))
    }

    private static func invalid(_ text: String, _ part: String) -> BenchError {
        BenchError(
            "--path '\(text)': cannot read '\(part)'; give a delay (25ms), a rate (10MB/s), a loss (1%) "
                + "and a queue (256KiB), comma-separated")
    }

    private static func format(_ value: Double) -> String {
        value.shortest
    }
}
