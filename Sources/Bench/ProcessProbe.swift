import FoundationEssentials
import Glibc
import Mux

/// Samples the memory, threads and CPU time of a process and all its descendants from /proc, so that
/// peers which fork per connection (sshd, socat) are measured whole.
///
/// A sampler thread writes the peaks; readers take them under the same lock.
final class ProcessProbe: Sendable {
    private let root: Int32
    private let peaks = Locked((rss: 0, threads: 0))
    private let running = Locked(true)
    private let stopped = Completion()
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    private static let pageSize = sysconf(Int32(_SC_PAGESIZE))

    /// Starts sampling `root`'s process tree every `interval` seconds.
    init(root: Int32, interval: Double = 0.1) {
        self.root = root
        do {
            try startThread(named: "bench-probe") { [peaks, running, stopped, root] in
                while running.withLock({ $0 }) {
                    let sample = Self.sample(tree: Self.tree(of: root))
                    peaks.withLock { $0 = (max($0.rss, sample.rss), max($0.threads, sample.threads)) }
                    sleep(seconds: interval)
                }
                stopped.complete()
            }
        } catch {
            stopped.complete()  // no samples: the peaks read from /proc at the end (VmHWM) still stand
        }
    }

    /// CPU seconds used so far by the tree (children already reaped are in their parent's count).
    var cpuSeconds: Double { Self.cpuSeconds(of: Self.tree(of: root)) }

    /// Resident memory of the process and its children now, in bytes.
    var residentBytes: Int { Self.sample(tree: Self.tree(of: root)).rss }

    /// What each process of the tree has used so far: context switches (voluntary and involuntary, over its
    /// threads alive now) and its own CPU seconds (user and system). Subtract two readings over the processes present in both
    /// (`ProcessUsageReading.since`): a process that ended between them takes its share with it.
    var reading: ProcessUsageReading {
        var processes: [Int32: (contextSwitches: Int, cpuSeconds: Double)] = [:]
        for pid in Self.tree(of: root) {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            let switches = tasks.reduce(0) { total, task in
                let status = "\(pid)/task/\(task)"
                return total + (SystemFile.statusNumber("voluntary_ctxt_switches", of: status) ?? 0)
                    + (SystemFile.statusNumber("nonvoluntary_ctxt_switches", of: status) ?? 0)
            }
            // Its own CPU time only: a child reaped between the readings would add its whole life's to cutime.
            processes[pid] = (switches, Self.cpuSeconds(of: [pid], withReapedChildren: false))
        }
        return ProcessUsageReading(processes: processes)
    }

    /// Stops sampling and returns the peaks, with the CPU time used so far.
    func finish() -> ProcessUsage {
        running.withLock { $0 = false }
        stopped.wait(seconds: 2)
        let highWater = Self.tree(of: root).reduce(0) {
            $0 + (SystemFile.statusNumber("VmHWM", of: String($1)) ?? 0) * 1024
        }
        let (rss, threads) = peaks.withLock { $0 }
        return ProcessUsage(peakRSSBytes: max(rss, highWater), peakThreads: threads, cpuSeconds: self.cpuSeconds)
    }

    /// `root` and every process descended from it.
    static func tree(of root: Int32) -> [Int32] {
        var children: [Int32: [Int32]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let parent = statFields(of: pid).flatMap({ Int32($0[1]) }) else {
                continue
            }
            children[parent, default: []].append(pid)
        }
        var tree = [root]
        var index = 0
        while index < tree.count {
            tree += children[tree[index]] ?? []
            index += 1
        }
        return tree
    }

    private static func sample(tree: [Int32]) -> (rss: Int, threads: Int) {
        tree.reduce((0, 0)) { total, pid in
            guard let fields = statFields(of: pid), let threads = Int(fields[17]), let pages = Int(fields[21]) else {
                return total
            }
            return (total.0 + pages * pageSize, total.1 + threads)
        }
    }

    /// CPU seconds (user and system) of the processes of `tree`, with or without their reaped children's.
    private static func cpuSeconds(of tree: [Int32], withReapedChildren: Bool = true) -> Double {
        // utime, stime, then cutime, cstime
        let fields = withReapedChildren ? 11...14 : 11...12
        let ticks = tree.reduce(0) { total, pid in
            guard let stat = statFields(of: pid) else { return total }
            return total + stat[fields].reduce(0) { $0 + (Int($1) ?? 0) }
        }
        return Double(ticks) / ticksPerSecond
    }

    /// /proc/PID/stat's fields after the command name, so that index 0 is the state (field 3 of proc(5)).
    private static func statFields(of pid: Int32) -> [String]? {
        guard let text = SystemFile.text("/proc/\(pid)/stat"),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ").map(String.init)
        return fields.count > 21 ? fields : nil
    }
}

/// What the processes of a route used up to one moment, per process.
struct ProcessUsageReading {
    var processes: [Int32: (contextSwitches: Int, cpuSeconds: Double)]

    /// Context switches and CPU seconds used since `earlier`, by the processes alive at both readings.
    func since(_ earlier: ProcessUsageReading) -> (contextSwitches: Int, cpuSeconds: Double) {
        processes.reduce((0, 0.0)) { total, entry in
            guard let before = earlier.processes[entry.key] else { return total }
            return (
                total.0 + entry.value.contextSwitches - before.contextSwitches,
                total.1 + entry.value.cpuSeconds - before.cpuSeconds
            )
        }
    }
}
