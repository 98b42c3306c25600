import Foundation
import Testing

@testable import Mux

/// What the agents ask of the kernel, read with strace(1) while they run a tunnel: properties no test inside the
/// process can see.
@Suite(
    .serialized, .timeLimit(.minutes(2)), .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/strace")))
struct SystemCallTests {
    @Test func everyTimedWaitRunsOnTheMonotonicClockAndEverySocketIsAcceptedCloseOnExec() throws {
        let run = try TracedRun()
        defer { run.remove() }
        let (target, keyFile, traces) = (run.target, run.keyFile, run.traces)
        let calls = "futex,accept,accept4"
        let remotePort = try freeLoopbackPort()
        // The local agent starts first, so that its first client waits for the link (a timed wait); a
        // one-second keepalive makes its writer wait with a timeout; the idle timeout makes a half-closed
        // stream wait for its target.
        let local = try AgentProcess(
            [
                "local", "--listen", "127.0.0.1:0", "--remote", "127.0.0.1:\(remotePort)", "--key-file", keyFile,
                "--keepalive", "1", "--idle-timeout", "30",
            ], systemCallTrace: (calls, traces[0]))
        let client = Endpoint(host: "127.0.0.1", port: try #require(local.listeningPort()))
        let early = try connect(to: client)
        defer { early.close() }
        Thread.sleep(forTimeInterval: 0.5)
        let remote = try AgentProcess(
            [
                "remote", "--listen", "127.0.0.1:\(remotePort)", "--target", "\(target.endpoint)", "--key-file",
                keyFile, "--keepalive", "1",
            ], systemCallTrace: (calls, traces[1]))
        #expect(local.waitForLog("link up"))
        #expect(try echoesExactly(pattern(count: 10_000, seed: 1), over: early))
        #expect(try echoesExactly(pattern(count: 10_000, seed: 2), through: client))
        Thread.sleep(forTimeInterval: 2.5)  // keepalive waits time out twice
        for agent in [local, remote] {
            agent.send(SIGTERM)
            #expect(agent.waitForExit() == 0)
        }
        for trace in traces {
            let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
            let timedWaits = lines.filter { $0.contains("futex(") && $0.contains("{tv_sec=") }
            let wallClockWaits = timedWaits.filter { $0.contains("FUTEX_CLOCK_REALTIME") }
            #expect(
                wallClockWaits.isEmpty,
                "\(wallClockWaits.count) timed waits on the wall clock: \(wallClockWaits.prefix(2))")
            #expect(timedWaits.count > wallClockWaits.count, "the trace holds timed waits at all")
            #expect(lines.filter { $0.contains(" accept(") }.isEmpty, "accept(2) without SOCK_CLOEXEC")
        }
        let localLines = try String(contentsOfFile: traces[0], encoding: .utf8)
        #expect(localLines.contains("accept4("), "the local agent accepted its clients")
    }

    /// Both ends of a link cap the unsent bytes their kernel holds (TCP_NOTSENT_LOWAT), so that frames wait in
    /// the writer's queue, where streams take turns.
    @Test func eachLinkSocketCapsItsUnsentBacklog() throws {
        let run = try TracedRun()
        defer { run.remove() }
        let (target, keyFile, traces) = (run.target, run.keyFile, run.traces)
        let remotePort = try freeLoopbackPort()
        let remote = try AgentProcess(
            [
                "remote", "--listen", "127.0.0.1:\(remotePort)", "--target", "\(target.endpoint)", "--key-file",
                keyFile,
            ], systemCallTrace: ("setsockopt", traces[1]))
        #expect(remote.waitForLog("listening"))
        let local = try AgentProcess(
            ["local", "--listen", "127.0.0.1:0", "--remote", "127.0.0.1:\(remotePort)", "--key-file", keyFile],
            systemCallTrace: ("setsockopt", traces[0]))
        #expect(local.waitForLog("link up"))
        for agent in [local, remote] {
            agent.send(SIGTERM)
            #expect(agent.waitForExit() == 0)
        }
        for trace in traces {
            let text = try String(contentsOfFile: trace, encoding: .utf8)
            #expect(text.contains("TCP_NOTSENT_LOWAT, [32768]"), "\(trace): no TCP_NOTSENT_LOWAT of 32 KiB")
        }
    }
}

/// What each traced run needs: an echo target, a key file, and a trace file for each agent.
private struct TracedRun {
    let target: TestTarget
    let keyFile: String
    let traces = ["local", "remote"].map { NSTemporaryDirectory() + "tcptunnel-trace-\($0)-\(UUID().uuidString)" }

    init() throws {
        target = try TestTarget.echo()
        keyFile = try makeKeyFile()
    }

    func remove() {
        target.stop()
        try? FileManager.default.removeItem(atPath: keyFile)
        for trace in traces { try? FileManager.default.removeItem(atPath: trace) }
    }
}
