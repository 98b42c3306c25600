import Foundation
import Glibc
import Testing

@testable import Mux

@Suite(.timeLimit(.minutes(1)))
struct WorkerPoolTests {
    /// The kernel's id of the calling thread.
    private static func threadID() -> Int32 {
        // /proc/thread-self links to PID/task/TID (Glibc's Swift module has neither gettid nor syscall).
        let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? ""
        return Int32(link.split(separator: "/").last ?? "") ?? -1
    }

    /// Runs `count` jobs at once on `pool`, each held until all have started; returns their threads' ids.
    private func runTogether(_ count: Int, on pool: WorkerPool) throws -> Set<Int32> {
        let ids = Locked(Set<Int32>())
        let started = Locked(0)
        let release = Completion()
        let ended = Locked(0)
        let allEnded = Completion()
        for _ in 0..<count {
            try pool.run(named: "pool-test") {
                ids.withLock { _ = $0.insert(Self.threadID()) }
                if started.withLock({ started in
                    started += 1
                    return started == count
                }) {
                    release.complete()
                }
                release.wait()
                if ended.withLock({ ended in
                    ended += 1
                    return ended == count
                }) {
                    allEnded.complete()
                }
            }
        }
        #expect(allEnded.wait(seconds: 10), "jobs run at the same time, each on a thread of its own")
        return ids.withLock { $0 }
    }

    @Test func aFinishedJobsThreadTakesTheNextJob() throws {
        let pool = WorkerPool(maxParked: 4, idleTimeout: .seconds(10))
        let first = try runTogether(1, on: pool)
        #expect(eventually { pool.parkedCount == 1 })
        let second = try runTogether(1, on: pool)
        #expect(first == second, "the parked thread ran the second job")
    }

    @Test func jobsHandedOverAtOnceEachGetAThreadOfTheirOwn() throws {
        let pool = WorkerPool(maxParked: 8, idleTimeout: .seconds(10))
        #expect(try runTogether(3, on: pool).count == 3)
        #expect(eventually { pool.parkedCount == 3 })
        // Five at once: the three parked threads and two new ones, all at the same time.
        #expect(try runTogether(5, on: pool).count == 5)
    }

    @Test func atMostTheLimitPark() throws {
        let pool = WorkerPool(maxParked: 2, idleTimeout: .seconds(10))
        _ = try runTogether(5, on: pool)
        #expect(eventually { pool.parkedCount == 2 })
        Thread.sleep(forTimeInterval: 0.1)
        #expect(pool.parkedCount == 2, "the other three threads ended")
    }

    @Test func parkedThreadsEndAfterTheIdleTimeout() throws {
        let pool = WorkerPool(maxParked: 4, idleTimeout: .milliseconds(100))
        _ = try runTogether(2, on: pool)
        #expect(eventually { pool.parkedCount == 2 })
        #expect(eventually { pool.parkedCount == 0 })
        let after = try runTogether(1, on: pool)
        #expect(after.count == 1, "a new thread once none is parked")
    }
}
