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

    /// Context switches, voluntary and involuntary, of every thread of the tree so far (threads that already
    /// ended are not counted: compare two readings only over a time when the route's threads all live on).
    var contextSwitches: Int {
        Self.tree(of: root).reduce(0) { total, pid in
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            return tasks.reduce(total) { total, task in
                let status = "\(pid)/task/\(task)"
                return total + (SystemFile.statusNumber("voluntary_ctxt_switches", of: status) ?? 0)
                    + (SystemFile.statusNumber("nonvoluntary_ctxt_switches", of: status) ?? 0)
            }
        }
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

    private static func cpuSeconds(of tree: [Int32]) -> Double {
        let ticks = tree.reduce(0) { total, pid in
            guard let fields = statFields(of: pid) else { return total }
            // utime, stime, cutime, cstime
            return total + fields[11...14].reduce(0) { $0 + (Int($1) ?? 0) }
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
