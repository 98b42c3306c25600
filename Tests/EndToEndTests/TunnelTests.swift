import Crypto
import Foundation
import Testing

@testable import Mux

@Suite(.serialized, .timeLimit(.minutes(3)))
struct TunnelTests {
    @Test func hundredConcurrentStreamsArriveByteExactBothWaysWithHalfClose() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try Tunnel(target: target.endpoint)
        defer { tunnel.stop() }
        let endpoint = tunnel.clientEndpoint
        var generator = SeededGenerator(seed: 2)
        let sizes = (0..<100).map { index in
            index < 3 ? [0, 1, 3 << 20][index] : Int.random(in: 0...(3 << 20), using: &generator)
        }
        let failures = Locked<[String]>([])
        let finished = try runConcurrently(100, within: 150) { index in
            let data = pattern(count: sizes[index], seed: UInt64(index))
            do {
                let reply = try exchange(data, through: endpoint)
                if reply.ending != .endOfStream || !identical(reply.bytes, data) {
                    failures.withLock { $0.append("stream \(index): sent \(data.count) B, got \(reply)") }
                }
            } catch {
                failures.withLock { $0.append("stream \(index): \(error)") }
            }
        }
        #expect(finished)
        #expect(failures.withLock { $0 } == [])
        #expect(eventually { tunnel.remote.streamCount == 0 })
    }

    @Test func clientThatNeverReadsDoesNotStallOtherStreams() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try Tunnel(target: target.endpoint)
        defer { tunnel.stop() }
        let endpoint = tunnel.clientEndpoint

        // The echo target answers this client, which never reads: its replies back up through the tunnel, and
        // 64 MiB is more than every socket buffer and window on the way holds, so its sender must be held back.
        let stuck = try connect(to: endpoint)
        defer { stuck.close() }
        let stuckSender = Completion()
        let flood = pattern(count: 64 << 20, seed: 99)  // made here: under a sanitizer it takes seconds
        try startThread(named: "stuck-sender") {
            try? stuck.sendAll(flood)
            stuckSender.complete()
        }

        let failures = Locked<[String]>([])
        let finished = try runConcurrently(20, within: 60) { index in
            let data = pattern(count: 1 << 20, seed: UInt64(index))
            let reply = try? exchange(data, through: endpoint)
            guard let reply, reply.ending == .endOfStream, identical(reply.bytes, data) else {
                return failures.withLock {
                    $0.append("stream \(index) got \(reply.map(\.description) ?? "no connection")")
                }
            }
        }
        #expect(finished)
        #expect(failures.withLock { $0 } == [])
        #expect(!stuckSender.hasCompleted, "flow control should hold back a client whose replies are not read")
        // End the sender before the descriptor is closed: a later test could otherwise get the same number.
        stuck.shutdown(.both)
        #expect(stuckSender.wait(seconds: 10))
    }

    /// A keep-alive client reading 40 KiB responses (issue 29): each arrives at once. Without TCP_NODELAY on the
    /// client's socket, a response's last partial segment waited for the client's delayed ACK: 40 ms each.
    @Test func keepAliveResponsesOf40KiBArriveWithoutWaitingForADelayedACK() throws {
        let response = pattern(count: 40 << 10, seed: 3)
        let target = try TestTarget { socket in
            while (try? socket.receive(exactly: 4, before: .now + .seconds(10))) != nil {
                guard (try? socket.sendAll(response)) != nil else { return }
            }
        }
        defer { target.stop() }
        let tunnel = try Tunnel(target: target.endpoint)
        defer { tunnel.stop() }
        let client = try connect(to: tunnel.clientEndpoint)
        defer { client.close() }
        var times: [Double] = []
        for _ in 0..<30 {
            let started = ContinuousClock.now
            try client.sendAll(Array("GET\n".utf8))
            expectIdentical(read(client, exactly: response.count), response)
            times.append((ContinuousClock.now - started).inSeconds)
        }
        let median = times.sorted()[times.count / 2]
        print("measured: 40 KiB keep-alive responses through the tunnel, median \(Int(median * 1e6)) µs")
        #expect(median < 0.02, "median \(median) s: a delayed ACK is 40 ms")
    }

    @Test func idleLinkIsKeptAliveByPings() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        var settings = testSettings()
        // A PING every 0.2 s against a 1 s dead-link timeout: five chances, so a loaded machine still keeps the link.
        settings.keepaliveInterval = 0.2
        settings.deadLinkTimeout = 1
        let tunnel = try Tunnel(target: target.endpoint, settings: settings)
        defer { tunnel.stop() }
        let client = try connect(to: tunnel.clientEndpoint)
        defer { client.close() }
        #expect(eventually { tunnel.remote.streamCount == 1 })
        Thread.sleep(forTimeInterval: 3)  // three dead-link timeouts without stream traffic
        let data = pattern(count: 10_000, seed: 4)
        try client.sendAll(data)
        client.shutdown(.write)
        expectIdentical(readToEnd(client), data)
    }

    @Test func targetThatSpeaksFirstIsHeardWithoutTheClientSendingAnything() throws {
        let banner = Array("220 mail.example ESMTP ready\r\n".utf8)
        let target = try TestTarget.echo(banner: banner)
        defer { target.stop() }
        let tunnel = try Tunnel(target: target.endpoint)
        defer { tunnel.stop() }
        let client = try connect(to: tunnel.clientEndpoint)
        defer { client.close() }
        #expect(read(client, exactly: banner.count) == banner)
    }

    @Test func refusedTargetClosesTheClientPromptly() throws {
        let unused = try Listener(endpoint: loopback)
        let closedPort = unused.endpoint
        unused.stop()
        let tunnel = try Tunnel(target: closedPort)
        defer { tunnel.stop() }
        let client = try connect(to: tunnel.clientEndpoint)
        defer { client.close() }
        let refused = receive(client, within: 5)
        #expect(refused.bytes.isEmpty && refused.ending == .reset && refused.seconds < 3, "\(refused)")
        #expect(eventually { tunnel.remote.streamCount == 0 })
    }

    @Test func localAgentWithAnotherKeyGetsNoLink() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        var settings = testSettings()
        settings.linkWaitTimeout = 1
        let remote = try RemoteAgent(
            listen: loopback, target: target.endpoint, keys: [try makeKey()], settings: settings, logger: quietLogger)
        try remote.start()
        defer { remote.stop() }
        let local = try LocalAgent(
            listen: loopback, remote: remote.listeningEndpoint, key: try makeKey(), settings: settings,
            logger: quietLogger)
        try local.start()
        defer { local.stop() }
        let client = try connect(to: local.listeningEndpoints[0])
        defer { client.close() }
        let closed = receive(client, within: 5)
        #expect(closed.bytes.isEmpty && closed.ending == .reset, "after the 1 s link wait: \(closed)")
        #expect(!local.isLinkUp)
        #expect(remote.linkCount == 0)
    }

    @Test func twoLocalAgentsUseTheSameStreamIDsWithoutColliding() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let key = try makeKey()
        let first = try Tunnel(target: target.endpoint, key: key)
        defer { first.stop() }
        let second = try LocalAgent(
            listen: loopback, remote: first.remote.listeningEndpoint, key: key, settings: testSettings(),
            logger: quietLogger)
        try second.start()
        defer { second.stop() }
        #expect(eventually { first.remote.linkCount == 2 })
        let endpoints = [first.clientEndpoint, second.listeningEndpoints[0]]
        let replies = Locked<[Int: Received]>([:])
        #expect(
            try runConcurrently(2, within: 30) { index in
                let reply = try? exchange(pattern(count: 300_000, seed: UInt64(index)), through: endpoints[index])
                replies.withLock { $0[index] = reply }
            })
        for index in 0..<2 {
            let reply = try #require(replies.withLock { $0[index] })
            expectEchoed(reply, pattern(count: 300_000, seed: UInt64(index)))
        }
    }

    @Test func restartedLocalAgentGetsFreshStreams() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let key = try makeKey()
        let tunnel = try Tunnel(target: target.endpoint, key: key)
        defer { tunnel.remote.stop() }
        let held = try connect(to: tunnel.clientEndpoint)
        defer { held.close() }
        #expect(eventually { tunnel.remote.streamCount == 1 })
        tunnel.local.stop()
        #expect(eventually { tunnel.remote.linkCount == 0 && tunnel.remote.streamCount == 0 })

        let restarted = try LocalAgent(
            listen: loopback, remote: tunnel.remote.listeningEndpoint, key: key, settings: testSettings(),
            logger: quietLogger)
        try restarted.start()
        defer { restarted.stop() }
        let data = pattern(count: 100_000, seed: 7)
        expectEchoed(try exchange(data, through: restarted.listeningEndpoints[0]), data)
    }

    @Test func stoppedAgentsAreFreedOnceTheirThreadsEnd() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        weak var local: LocalAgent?
        weak var remote: RemoteAgent?
        do {
            let tunnel = try Tunnel(target: target.endpoint)
            (local, remote) = (tunnel.local, tunnel.remote)
            #expect(try echoesExactly(pattern(count: 100_000, seed: 8), through: tunnel.clientEndpoint))
            tunnel.stop()
        }
        #expect(eventually { local == nil && remote == nil })
    }

    @Test func garbageSentToRemotePortGetsNoByteBackAndOtherLinksKeepWorking() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try Tunnel(target: target.endpoint)
        defer { tunnel.stop() }
        let probes: [[UInt8]] = [
            pattern(count: 4096, seed: 5), Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), pattern(count: 72, seed: 6),
            [],
        ]
        for probe in probes {
            let prober = try connect(to: tunnel.remote.listeningEndpoint)
            defer { prober.close() }
            try prober.sendAll(probe)
            let answer = receive(prober, within: 5)
            #expect(answer.bytes.isEmpty && [.endOfStream, .reset].contains(answer.ending), "\(answer)")
        }
        let data = pattern(count: 200_000, seed: 8)
        expectEchoed(try exchange(data, through: tunnel.clientEndpoint), data)
        #expect(tunnel.remote.linkCount == 1)
    }
}
