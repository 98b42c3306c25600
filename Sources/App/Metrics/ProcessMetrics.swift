import Glibc
import Mux
import Prometheus

/// Prometheus' standard `process_*` metrics of this process (CPU time, memory, descriptors, start time), read
/// from /proc when a scrape asks for them, as the Go and Java clients export them.
final class ProcessMetrics: Sendable {
    private let cpu: Prometheus.Counter
    private let residentMemory: Gauge
    private let virtualMemory: Gauge
    private let openFDs: Gauge
    private let maxFDs: Gauge
    /// The CPU time exported so far: the counter only goes up, by what was used since.
    private let exportedCPUSeconds = Locked(0.0)

    init(registry: PrometheusCollectorRegistry) {
        cpu = registry.makeCounter(descriptor: MetricFamily.processCPU.descriptor)
        residentMemory = registry.makeGauge(descriptor: MetricFamily.processResidentMemory.descriptor)
        virtualMemory = registry.makeGauge(descriptor: MetricFamily.processVirtualMemory.descriptor)
        openFDs = registry.makeGauge(descriptor: MetricFamily.processOpenFDs.descriptor)
        maxFDs = registry.makeGauge(descriptor: MetricFamily.processMaxFDs.descriptor)
        let startTime = registry.makeGauge(descriptor: MetricFamily.processStartTime.descriptor)
        if let stat = Self.stat(), let boot = Self.bootTime() {
            startTime.set(boot + Double(stat.startTicks) / Self.ticksPerSecond)
        }
        update()
    }

    /// Reads the process's numbers now.
    func update() {
        if let stat = Self.stat() {
            let seconds = Double(stat.userTicks + stat.systemTicks) / Self.ticksPerSecond
            exportedCPUSeconds.withLock { exported in
                if seconds > exported {
                    cpu.increment(by: seconds - exported)
                    exported = seconds
                }
            }
            virtualMemory.set(Double(stat.virtualBytes))
            residentMemory.set(Double(stat.residentPages) * Double(sysconf(Int32(_SC_PAGESIZE))))
        }
        openFDs.set(Double(Self.openDescriptors()))
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { maxFDs.set(Double(limit.rlim_cur)) }
    }

    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// The fields of /proc/self/stat this uses (proc(5)); the command name, which may hold spaces and
    /// parentheses, is skipped up to its last ')'.
    private static func stat() -> (
        userTicks: Int, systemTicks: Int, startTicks: Int, virtualBytes: Int, residentPages: Int
    )? {
        guard let text = SystemFile.text("/proc/self/stat"), let end = text.lastIndex(of: ")") else { return nil }
        // Field 3 (state) is the first after the name; utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
        let fields = text[text.index(after: end)...].split(separator: " ")
        func field(_ number: Int) -> Int? { fields.count > number - 3 ? Int(fields[number - 3]) : nil }
        guard let user = field(14), let system = field(15), let start = field(22), let virtual = field(23),
            let resident = field(24)
        else { return nil }
        return (user, system, start, virtual, resident)
    }

    /// When the machine booted, in Unix time, from /proc/stat's `btime`.
    private static func bootTime() -> Double? {
        SystemFile.text("/proc/stat")?.split(separator: "\n").first { $0.hasPrefix("btime ") }
            .flatMap { Double($0.dropFirst("btime ".count)) }
    }

    /// The descriptors open now: the entries of /proc/self/fd, less the one reading it.
    private static func openDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { $0.first == UInt8(ascii: ".") }
            if !isDot { count += 1 }
        }
        return count - 1
    }
}
