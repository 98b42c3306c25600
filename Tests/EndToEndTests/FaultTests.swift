import Foundation
import Testing

@testable import Mux

/// The failures a tunnel meets in months of unattended running, each provoked on purpose against real agent
/// processes on 127.0.0.1. Every test ends by checking that streams meant to survive lost no byte.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct FaultTests {
    @Test func killedRemoteAgentsStreamsWaitAndEndWhenItsRestartedSuccessorDoesNotKnowTheirSession() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try ProcessTunnel(
            target: target.endpoint,
            localArguments: ["--keepalive", "1", "--dead-link-timeout", "3", "--link-wait-timeout", "1"])
        let client = tunnel.client
        let clients = try (0..<50).map { _ in try connect(to: client) }
        defer { for socket in clients { socket.close() } }
        let chunk = pattern(count: 64 * 1024, seed: 1)
        let ended = Locked<[Date]>([])
        let group = DispatchGroup()
        for socket in clients {
            group.enter()
            try startThread(named: "busy") {
                try? keepBusy(socket, chunk: chunk, seconds: 30)
                ended.withLock { $0.append(Date()) }
                group.leave()
            }
        }
        Thread.sleep(forTimeInterval: 1)  // all 50 streams busy both ways

        // A killed agent looks like a broken connection: the streams wait for their session to resume.
        tunnel.remote.send(SIGKILL)
        #expect(tunnel.local.waitForLog("streams wait up to 120 s for it to resume"))
        // While no link takes new streams, a new client waits for the link-wait timeout and is then closed.
        let early = try connect(to: client)
        defer { early.close() }
        let waitedForLink = receive(early, within: 10)
        #expect(
            waitedForLink.bytes.isEmpty && waitedForLink.ending == .reset && waitedForLink.seconds < 4,
            "\(waitedForLink)")
        #expect(ended.withLock { $0.count } == 0, "no stream ends while its session may still resume")

        // The restarted agent holds no session: the local agent resets the streams at once and links anew.
        try tunnel.restartRemote()
        let restarted = Date()
        #expect(group.wait(timeout: .now() + 10) == .success, "every client should see its connection end")
        let slowest = ended.withLock { $0.map { $0.timeIntervalSince(restarted) }.max() ?? 99 }
        #expect(slowest < 3, "clients closed \(slowest) s after the restart")
        #expect(tunnel.local.waitForLog("no longer holds this link's session"))
        #expect(tunnel.local.waitForLog("link up", times: 2, seconds: 15))
        #expect(try echoesExactly(pattern(count: 1 << 20, seed: 2), through: client))
    }

    @Test func blackHoledLinkIsDetectedAndItsStreamResumesWithEveryByteWhenThePeerComesBack() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try ProcessTunnel(
            target: target.endpoint,
            localArguments: ["--keepalive", "0.3", "--dead-link-timeout", "1", "--handshake-timeout", "1"])
        let held = try connect(to: tunnel.client)
        defer { held.close() }
        #expect(try echoesExactly(pattern(count: 1000, seed: 3), keepingOpen: held))

        tunnel.remote.send(SIGSTOP)  // the TCP connection stays up; nothing answers
        #expect(tunnel.local.waitForLog("connection lost (peer silent for 1 s)"))
        let meanwhile = receive(held, within: 2)
        #expect(meanwhile.bytes.isEmpty && meanwhile.ending == .timedOut, "the stream waits: \(meanwhile)")

        tunnel.remote.send(SIGCONT)
        defer { tunnel.remote.send(SIGTERM) }
        #expect(tunnel.local.waitForLog("resumed on a new connection", seconds: 15))
        #expect(try echoesExactly(pattern(count: 1 << 20, seed: 4), keepingOpen: held))
    }

    /// What a thousand streams cost while their session waits to resume, on each agent: the agent whose peer
    /// went silent (SIGSTOP, with a 2 s dead-link timeout) holds them detached; measured against the same streams
    /// open, and every one of them echoes exactly once the peer is back.
    @Test func aThousandDetachedStreamsCostLittleMoreThanOpenOnesAndAllResume() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let fast = ["--keepalive", "1", "--dead-link-timeout", "2", "--handshake-timeout", "2"]
        let tunnel = try ProcessTunnel(
            target: target.endpoint, remoteArguments: fast, localArguments: fast + ["--max-streams", "2000"])
        let clients = try (0..<1000).map { _ in try connect(to: tunnel.client) }
        defer { for socket in clients { socket.close() } }
        func allEcho(seed: UInt64) throws -> Bool {
            for (index, socket) in clients.enumerated() {
                guard try echoesExactly(pattern(count: 1024, seed: seed + UInt64(index)), keepingOpen: socket) else {
                    return false
                }
            }
            return true
        }
        #expect(try allEcho(seed: 0))
        var report: [String] = []
        for (silent, holder) in [(tunnel.remote, tunnel.local), (tunnel.local, tunnel.remote)] {
            Thread.sleep(forTimeInterval: 0.5)
            let open = holder.status("VmRSS") ?? 0
            let waits = holder.count(of: "its 1000 streams wait")
            silent.send(SIGSTOP)
            #expect(holder.waitForLog("its 1000 streams wait", times: waits + 1))
            Thread.sleep(forTimeInterval: 1)
            let detached = holder.status("VmRSS") ?? .max
            silent.send(SIGCONT)
            #expect(tunnel.local.waitForLog("resumed on a new connection", times: report.count + 1, seconds: 20))
            #expect(try allEcho(seed: UInt64(1000 * (report.count + 1))))
            report.append(
                "\(holder === tunnel.local ? "local" : "remote") agent \(open / 1024) MiB open, \(detached / 1024) MiB detached"
            )
            #expect(detached - open < 16 * 1024, "\(report.last!)")
        }
        print("measured: 1,000 streams: \(report.joined(separator: "; "))")
    }

    @Test func clientThatNeverReadsLeavesFiftyOthersAtSpeedAndAgentMemoryBounded() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try ProcessTunnel(target: target.endpoint)
        let data = pattern(count: 10 << 20, seed: 5)
        let client = tunnel.client

        func fiftyTransfers() throws -> (seconds: Double, allExact: Bool) {
            let exact = Locked(0)
            let started = Date()
            let finished = try runConcurrently(50, within: 120) { _ in
                if (try? echoesExactly(data, through: client)) == true { exact.withLock { $0 += 1 } }
            }
            return (Date().timeIntervalSince(started), finished && exact.withLock { $0 } == 50)
        }

        let alone = try fiftyTransfers()
        let stuck = try connect(to: tunnel.client)
        defer { stuck.close() }
        let stuckSender = Completion()
        try startThread(named: "stuck-sender") {
            let chunk = pattern(count: 1 << 20, seed: 6)
            for _ in 0..<256 where (try? stuck.sendAll(chunk)) != nil {}
            stuckSender.complete()
        }
        Thread.sleep(forTimeInterval: 0.5)
        let beside = try fiftyTransfers()
        #expect(alone.allExact && beside.allExact)
        #expect(!stuckSender.hasCompleted, "flow control should hold the stuck client back")
        // Held back by the stuck client, the fifty would wait for its write timeout (120 s). Two runs of the same
        // load differ by up to 2.5× when other suites share both busy cores (5.2 s, then 12.8 s measured), so the
        // bound leaves room for that and still tells a stall.
        #expect(
            beside.seconds < alone.seconds * 3 + 5,
            "50 × 10 MB took \(alone.seconds) s alone, \(beside.seconds) s beside")
        let localPeak = tunnel.local.status("VmHWM") ?? .max
        let remotePeak = tunnel.remote.status("VmHWM") ?? .max
        print(
            "measured: 50 × 10 MiB echoed in \(alone.seconds) s alone, \(beside.seconds) s beside a stuck client; "
                + "peak RSS local \(localPeak / 1024) MiB, remote \(remotePeak / 1024) MiB")
        // Stated bound: 256 MiB per agent (50 streams × 1 MiB windows, plus queues, buffers and threads).
        #expect(
            localPeak < 256 << 10 && remotePeak < 256 << 10, "peak RSS: local \(localPeak) kB, remote \(remotePeak) kB")
        stuck.shutdown(.both)
        #expect(stuckSender.wait(seconds: 10))
    }

    @Test func twoThousandStreamsComeAndGoWithoutLeakingThreadsOrDescriptors() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try ProcessTunnel(target: target.endpoint)
        let agents = [tunnel.local, tunnel.remote]
        let idleThreads = agents.map { $0.status("Threads") ?? -1 }
        let idleDescriptors = agents.map(\.descriptorCount)

        let clients = try (0..<2000).map { _ in try connect(to: tunnel.client) }
        var answered = 0
        for socket in clients {
            try socket.sendAll([7])
            if receive(socket, limit: 1, within: 10).bytes == [7] { answered += 1 }
        }
        #expect(answered == 2000)
        let busyThreads = agents.map { $0.status("Threads") ?? -1 }
        print(
            "measured: threads idle \(idleThreads), with 2000 streams \(busyThreads); "
                + "peak RSS \(agents.map { ($0.status("VmHWM") ?? 0) / 1024 }) MiB")
        // One thread per stream: a stream whose socket takes every byte at once needs no downlink helper.
        #expect(
            zip(busyThreads, idleThreads).allSatisfy { $0 >= $1 + 2000 && $0 < $1 + 2100 },
            "threads: \(idleThreads) → \(busyThreads)")

        for socket in clients { socket.close() }
        // Finished streams' threads park for the next streams (at most 128 per agent, 10 s each), then end.
        let threadsBack = eventually(within: 60) { agents.map { $0.status("Threads") ?? -1 } == idleThreads }
        #expect(threadsBack, "threads after close: \(agents.map { $0.status("Threads") ?? -1 }), idle: \(idleThreads)")
        let descriptorsBack = eventually(within: 20) { agents.map(\.descriptorCount) == idleDescriptors }
        #expect(
            descriptorsBack, "descriptors after close: \(agents.map(\.descriptorCount)), idle: \(idleDescriptors)")
    }

    @Test func streamsBeyondTheLimitAreRefusedAndTheOthersUnaffected() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try ProcessTunnel(target: target.endpoint, remoteArguments: ["--max-streams", "5"])
        let held = try (0..<5).map { _ in try connect(to: tunnel.client) }
        defer { for socket in held { socket.close() } }
        for socket in held {
            try socket.sendAll([1])
            #expect(read(socket, exactly: 1) == [1])
        }

        let refusedAt = Date()
        #expect(isReset(at: tunnel.client))
        #expect(Date().timeIntervalSince(refusedAt) < 3)
        #expect(tunnel.remote.waitForLog("refused stream"))

        for (index, socket) in held.enumerated() {
            let data = pattern(count: 100_000, seed: UInt64(index))
            try socket.sendAll(data)
            socket.shutdown(.write)
            expectIdentical(readToEnd(socket), data)
        }
    }

    @Test func localAgentRefusesClientsBeyondItsOwnLimitAtOnce() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try ProcessTunnel(target: target.endpoint, localArguments: ["--max-streams", "2"])
        let held = try (0..<2).map { _ in try connect(to: tunnel.client) }
        defer { for socket in held { socket.close() } }
        for socket in held {
            try socket.sendAll([1])
            #expect(read(socket, exactly: 1) == [1])
        }
        #expect(isReset(at: tunnel.client))
        #expect(tunnel.local.waitForLog("refused client"))
        held[0].shutdown(.both)
        #expect(eventually { (try? echoesExactly([9, 9], through: tunnel.client)) == true })
    }

    @Test func targetThatAcceptsButNeverAnswersIsClosedByTheIdleTimeout() throws {
        let silent = try TestTarget.silent()
        defer { silent.stop() }
        let tunnel = try ProcessTunnel(target: silent.endpoint, remoteArguments: ["--idle-timeout", "1"])
        let client = try connect(to: tunnel.client)
        defer { client.close() }
        try client.sendAll(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        let waited = receive(client, within: 10)
        #expect(
            waited.bytes.isEmpty && waited.ending == .reset && waited.seconds >= 0.9 && waited.seconds < 3,
            "the idle timeout is 1 s: \(waited)")
        #expect(tunnel.remote.waitForLog("idle for 1 s"))
    }

    @Test func halfClosedClientWaitingOnASilentTargetIsResetByTheLocalIdleTimeout() throws {
        let silent = try TestTarget.silent()
        defer { silent.stop() }
        let tunnel = try ProcessTunnel(target: silent.endpoint, localArguments: ["--idle-timeout", "1"])
        let client = try connect(to: tunnel.client)
        defer { client.close() }
        try client.sendAll(Array("QUIT\r\n".utf8))
        client.shutdown(.write)
        let waited = receive(client, within: 10)
        #expect(
            waited.bytes.isEmpty && waited.ending == .reset && waited.seconds >= 0.9 && waited.seconds < 3,
            "the idle timeout is 1 s: \(waited)")
        #expect(tunnel.local.waitForLog("idle for 1 s"))
    }

    @Test func clientThatStopsReadingIsResetAfterTheWriteTimeout() throws {
        let flood = try TestTarget { socket in
            let chunk = pattern(count: 1 << 20, seed: 12)
            for _ in 0..<256 where (try? socket.sendAll(chunk)) != nil {}
        }
        defer { flood.stop() }
        let tunnel = try ProcessTunnel(target: flood.endpoint, localArguments: ["--write-timeout", "1"])
        let client = try connect(to: tunnel.client)
        defer { client.close() }  // never reads
        #expect(tunnel.local.waitForLog("peer accepted no data for 1 s; resetting it", times: 1, seconds: 10))
    }

    @Test func unreachableTargetIsGivenUpAfterTheConnectTimeout() throws {
        // A listener whose accept queue is full and never drained drops new SYNs: a black-holed target.
        let full = try Listener(endpoint: loopback)
        defer { full.stop() }
        var queued: [Socket] = []
        defer { for socket in queued { socket.close() } }
        let filled = Date(timeIntervalSinceNow: 5)
        while Date() < filled, let socket = try? Socket.connect(to: try full.endpoint.resolve(), timeout: 0.2) {
            queued.append(socket)
        }
        let tunnel = try ProcessTunnel(target: full.endpoint, remoteArguments: ["--connect-timeout", "1"])
        let client = try connect(to: tunnel.client)
        defer { client.close() }
        let waited = receive(client, within: 10)
        #expect(
            waited.bytes.isEmpty && waited.ending == .reset && waited.seconds >= 0.9 && waited.seconds < 3,
            "the connect timeout is 1 s: \(waited)")
        #expect(tunnel.remote.waitForLog("Connection timed out"))
    }

    @Test func targetResetMidStreamResetsOnlyItsClient() throws {
        // Sends 100 kB and then resets a client whose first byte is "R"; echoes everyone else.
        let target = try TestTarget { socket in
            let first = receive(socket, limit: 1, within: 10).bytes
            if first == Array("R".utf8) {
                try? socket.sendAll(pattern(count: 100_000, seed: 7))
                socket.setAbortOnClose()  // the close after this returns sends RST
                return
            }
            try? socket.sendAll(first)
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while let count = try? buffer.withUnsafeMutableBytes({ try socket.receive(into: $0) }), count > 0 {
                guard
                    (try? buffer.withUnsafeBytes({ try socket.sendAll(UnsafeRawBufferPointer(rebasing: $0[..<count])) }))
                        != nil
                else { return }
            }
            socket.shutdown(.write)
        }
        defer { target.stop() }
        let tunnel = try ProcessTunnel(target: target.endpoint)
        let bystander = try connect(to: tunnel.client)
        defer { bystander.close() }
        try bystander.sendAll([0])
        #expect(read(bystander, exactly: 1) == [0])

        let victim = try connect(to: tunnel.client)
        defer { victim.close() }
        try victim.sendAll(Array("R".utf8))
        let reset = receive(victim, within: 5)
        #expect(reset.bytes.count <= 100_000 && reset.ending == .reset && reset.seconds < 3, "\(reset)")

        let data = pattern(count: 1 << 20, seed: 8)
        try bystander.sendAll(data)
        bystander.shutdown(.write)
        expectIdentical(readToEnd(bystander), data)
    }

    @Test func clientResetAbortsTheTargetConnection() throws {
        let outcome = Locked<String?>(nil)
        let recording = try TestTarget { socket in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                do {
                    if try buffer.withUnsafeMutableBytes({ try socket.receive(into: $0) }) == 0 {
                        return outcome.withLock { $0 = "end of stream" }
                    }
                } catch {
                    return outcome.withLock { $0 = "\(error)" }
                }
            }
        }
        defer { recording.stop() }
        let tunnel = try ProcessTunnel(target: recording.endpoint)
        let client = try connect(to: tunnel.client)
        try client.sendAll([1, 2, 3])
        #expect(tunnel.remote.waitForLog("link up from"))
        Thread.sleep(forTimeInterval: 0.2)
        client.setAbortOnClose()
        client.close()
        #expect(eventually { outcome.withLock { $0 } != nil })
        #expect(outcome.withLock { $0 } == "recv: Connection reset by peer")
    }

    @Test func targetThatClosesFirstDeliversEveryByteThenEndOfStream() throws {
        let reply = pattern(count: 3 << 20, seed: 9)
        let closing = try TestTarget { socket in
            try? socket.sendAll(reply)  // then returns: the target closes with FIN, without reading anything
        }
        defer { closing.stop() }
        let tunnel = try ProcessTunnel(target: closing.endpoint)
        let client = try connect(to: tunnel.client)
        defer { client.close() }
        expectIdentical(readToEnd(client, within: 10), reply)
    }

    @Test func lowDescriptorLimitMakesAcceptFailLoudlyAndTheAgentRecovers() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let key = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: key) }
        let remote = try AgentProcess(["remote", "127.0.0.1", "0", "--target", "\(target.endpoint)", "--key-file", key])
        let remotePort = try #require(remote.listeningPort())
        let local = try AgentProcess(
            ["local", "127.0.0.1", "\(remotePort)", "--listen", "127.0.0.1:0", "--key-file", key], openFileLimit: 32)
        let client = Endpoint(host: "127.0.0.1", port: try #require(local.listeningPort()))
        #expect(local.waitForLog("link up"))

        let flood = try (0..<60).map { _ in try connect(to: client) }
        #expect(local.waitForLog("Too many open files"))
        for socket in flood { socket.close() }
        #expect(
            eventually(within: 10) { (try? echoesExactly(pattern(count: 100_000, seed: 10), through: client)) == true })
        #expect(local.process.isRunning)
    }

    /// Links whose peer has frozen never close their side: a stop that waited on them one by one took 2 s or more
    /// each, so ten of them outlasted systemd's stop timeout. All are waited on at once.
    @Test func sigtermEndsTwentyLinksToAFrozenPeerAtOnce() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try ProcessTunnel(target: target.endpoint, localArguments: ["--links", "20"])
        #expect(tunnel.remote.waitForLog("link up from", times: 20))
        tunnel.local.send(SIGSTOP)
        defer { tunnel.local.send(SIGCONT) }
        #expect(tunnel.local.waitUntilStopped(), "the local agent froze")
        let started = ContinuousClock.now
        tunnel.remote.send(SIGTERM)
        #expect(tunnel.remote.waitForExit(seconds: 20) == 0)
        #expect(ContinuousClock.now - started < .seconds(6))
        #expect(tunnel.remote.standardError.contains("closed 20 links whose peers did not close theirs"))
    }

    @Test func sigtermLetsAStreamInFlightFinishThenExitsZero() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try ProcessTunnel(target: target.endpoint, remoteArguments: ["--drain-timeout", "10"])
        let socket = try connect(to: tunnel.client)
        defer { socket.close() }
        let data = pattern(count: 2 << 20, seed: 11)
        let received = Locked<Received?>(nil)
        let done = Completion()
        try startThread(named: "reader") {
            received.withLock { $0 = receive(socket) }
            done.complete()
        }
        try socket.sendAll(Array(data[..<(1 << 20)]))
        tunnel.remote.send(SIGTERM)
        #expect(tunnel.remote.waitForLog("letting 1 streams finish"))
        Thread.sleep(forTimeInterval: 0.3)
        try socket.sendAll(Array(data[(1 << 20)...]))
        socket.shutdown(.write)
        #expect(done.wait(seconds: 10))
        let reply = try #require(received.withLock { $0 })
        expectEchoed(reply, data)
        #expect(tunnel.remote.waitForExit(seconds: 5) == 0)
    }
}
