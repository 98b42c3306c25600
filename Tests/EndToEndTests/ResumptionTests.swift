import Crypto
import Foundation
import Testing

@testable import Mux

/// Streams that outlive their link's connection (docs/PROTOCOL.md §10): connections killed as a middlebox kills
/// them (`ss -K`), cut by a failing path, or moved on purpose, with both transports; every byte checked.
@Suite(.serialized, .coverSite, .timeLimit(.minutes(5)))
struct ResumptionTests {
    /// Agents in this process linked over `transport` (the TLS one in the shape of the suite's cover site), in
    /// front of `target` (by default an echo server of their own); `through` gives the address the local agent
    /// links to instead of the remote agent's (a relay's).
    final class Tunnel {
        private let echo: TestTarget?
        let remote: RemoteAgent
        let local: LocalAgent
        let remoteMetrics = AgentMetrics()
        let localMetrics = AgentMetrics()
        let key: PreSharedKey

        init(
            _ transport: CensorTests.Transport, target: Endpoint? = nil,
            local localSettings: TunnelSettings = testSettings(),
            remote remoteSettings: TunnelSettings = testSettings(), through: ((Endpoint) throws -> Endpoint)? = nil
        ) throws {
            echo = target == nil ? try TestTarget.echo() : nil
            key = try makeKey()
            let cover = try CoverSite.current
            remote = try RemoteAgent(
                listen: loopback, allowList: AllowList(defaultTarget: target ?? echo!.endpoint), keys: [key],
                cover: transport == .tls ? cover.endpoint : nil, settings: remoteSettings, metrics: remoteMetrics,
                logger: quietLogger)
            try remote.start()
            let linkTo = try through?(remote.listeningEndpoint) ?? remote.listeningEndpoint
            local = try LocalAgent(
                forwards: [.tunnel(listen: loopback)], remotes: [linkTo], key: key,
                transport: transport == .tls ? .tls(serverName: CoverSite.serverName) : .native,
                settings: localSettings, metrics: localMetrics, logger: quietLogger)
            try local.start()
            #expect(eventually(within: 10) { local.isLinkUp })
        }

        var client: Endpoint { local.listeningEndpoints[0] }

        deinit {
            local.stop()
            remote.stop()
            echo?.stop()
        }
    }

    @Test(arguments: CensorTests.Transport.allCases)
    func aHundredBulkStreamsAndAnInteractiveOneKeepEveryByteThroughFiveKilledConnections(
        transport: CensorTests.Transport
    )
        throws
    {
        let tunnel = try Tunnel(transport)
        let streams = 100
        let bulk = try (0..<streams).map { _ in try connect(to: tunnel.client) }
        defer { for socket in bulk { socket.close() } }
        let interactive = try InteractiveProbe(through: tunnel.client)
        let exact = Locked(0)
        let failures = Locked<[String]>([])
        let done = DispatchGroup()
        for (index, socket) in bulk.enumerated() {
            done.enter()
            try startThread(named: "bulk") {
                defer { done.leave() }
                let data = pattern(count: 2 << 20, seed: UInt64(index))
                try? startThread(named: "test-sender") { _ = try? socket.sendAll(data) }
                let echoed = receive(socket, limit: data.count, within: 120)
                if echoed.ending == .limitReached && echoed.bytes == data {
                    exact.withLock { $0 += 1 }
                } else {
                    let firstDifference = echoed.bytes.indices.first { echoed.bytes[$0] != data[$0] }
                    failures.withLock {
                        $0.append(
                            "stream \(index): \(echoed), first differing byte \(firstDifference.map(String.init) ?? "none")"
                        )
                    }
                }
            }
        }
        #expect(eventually(within: 20) { interactive.roundTrips >= 10 }, "every stream under way")
        interactive.worstRoundTrip(reset: true)  // the streams' setup
        Thread.sleep(forTimeInterval: 0.3)
        let unbroken = interactive.worstRoundTrip(reset: true)  // the load's own cost, before any kill
        var resumedAfter: [Double] = []
        var pauses: [Double] = []
        for kill in 1...5 {
            // Counted from what came before: a slow machine may also move a connection that fell silent.
            let before = tunnel.localMetrics.resumptionCount
            let killed = ContinuousClock.now
            // At least the link's connection; a move to a fresh one may be under way too (see OpenSSHTests).
            #expect(killConnections(toPort: tunnel.remote.listeningEndpoint.port) >= 1)
            #expect(eventually(within: 10) { tunnel.localMetrics.resumptionCount > before }, "resumption \(kill)")
            resumedAfter.append((ContinuousClock.now - killed).inSeconds)
            Thread.sleep(forTimeInterval: 0.3)
            pauses.append(interactive.worstRoundTrip(reset: true))
        }
        #expect(done.wait(timeout: .now() + 120) == .success)
        // The last kill's pause may outlast the 0.3 s after it: what came until the bulk streams ended counts too.
        pauses[pauses.count - 1] = max(pauses[pauses.count - 1], interactive.worstRoundTrip(reset: true))
        let probe = interactive.stop()
        let milliseconds = { (values: [Double]) in values.map { "\(Int($0 * 1000)) ms" }.joined(separator: ", ") }
        print(
            "measured: \(transport), 5 connections killed under \(streams) bulk streams: resumed after \(milliseconds(resumedAfter)); the interactive stream's longest round trip after each kill \(milliseconds(pauses)) (\(milliseconds([unbroken])) before the first), \(probe.roundTrips) round trips exact before the end or a failure"
        )
        #expect(exact.withLock { $0 } == streams, "every bulk stream echoed every byte: \(failures.withLock { $0 })")
        #expect(probe.failure == nil, "the interactive stream echoed every message")
        #expect(tunnel.remoteMetrics.resumptionCount >= 5)
        // A reconnect is a TCP and a tunnel handshake; with the round trip, well under a second on loopback even
        // with 100 streams pushing data (and under a sanitizer).
        #expect(pauses.allSatisfy { $0 < 2 }, "\(pauses)")
    }

    @Test func pastTheResumeTimeoutItsStreamsAreResetAsWhenSessionsCouldNotResume() throws {
        var settings = testSettings()
        settings.resumeTimeout = 1
        let relay = Locked<Relay?>(nil)
        let tunnel = try Tunnel(.native, local: settings, remote: settings) { remote in
            let made = try Relay(upstream: remote) { _, _, _ in }
            relay.withLock { $0 = made }
            return made.endpoint
        }
        let path = try #require(relay.withLock { $0 })
        defer { path.stop() }
        let held = try connect(to: tunnel.client)
        defer { held.close() }
        #expect(try echoesExactly(pattern(count: 1000, seed: 1), keepingOpen: held))

        path.cut(refusingNew: true)  // and the remote agent stays out of reach
        let ended = receive(held, within: 10)
        #expect(ended.bytes.isEmpty && ended.ending == .reset, "\(ended)")
        #expect(ended.seconds > 0.8 && ended.seconds < 4, "reset after the 1 s resume timeout: \(ended)")
        #expect(eventually { tunnel.localMetrics.sessionLosses(.timeout) == 1 })
        #expect(eventually { tunnel.remoteMetrics.sessionLosses(.timeout) == 1 })

        path.restore()
        #expect(eventually(within: 10) { tunnel.local.isLinkUp }, "a new session begins")
        #expect(try echoesExactly(pattern(count: 100_000, seed: 2), through: tunnel.client))
    }

    @Test func theRemoteAgentEndsTheLongestWaitingSessionWhenMoreWaitThanItKeeps() throws {
        var remoteSettings = testSettings()
        remoteSettings.maxDetachedSessions = 1
        let relays = Locked<[Relay]>([])
        let tunnel = try Tunnel(.native, remote: remoteSettings) { remote in
            let made = try Relay(upstream: remote) { _, _, _ in }
            relays.withLock { $0.append(made) }
            return made.endpoint
        }
        // A second local agent with the same key, through a relay of its own.
        let second = try Relay(upstream: tunnel.remote.listeningEndpoint) { _, _, _ in }
        defer { second.stop() }
        let other = try LocalAgent(
            forwards: [.tunnel(listen: loopback)], remotes: [second.endpoint], key: tunnel.key,
            settings: testSettings(), logger: quietLogger)
        try other.start()
        defer { other.stop() }
        #expect(eventually { other.isLinkUp && tunnel.remote.linkCount == 2 })
        let first = try #require(relays.withLock { $0.first })
        defer { first.stop() }
        let older = try connect(to: tunnel.client)
        defer { older.close() }
        let newer = try connect(to: other.listeningEndpoints[0])
        defer { newer.close() }
        for socket in [older, newer] { #expect(try echoesExactly(pattern(count: 1000, seed: 3), keepingOpen: socket)) }

        first.cut(refusingNew: true)
        #expect(eventually { tunnel.remoteMetrics.resumptionCount == 0 && tunnel.remote.linkCount == 2 })
        Thread.sleep(forTimeInterval: 0.2)
        second.cut(refusingNew: true)
        #expect(eventually { tunnel.remoteMetrics.sessionLosses(.evicted) == 1 }, "the first to wait is ended")
        first.restore()
        second.restore()
        // The evicted session's local agent learns it is gone and resets its stream; the other resumes.
        #expect(receive(older, within: 10).ending == .reset)
        #expect(eventually(within: 10) { tunnel.localMetrics.sessionLosses(.unknown) == 1 })
        #expect(try echoesExactly(pattern(count: 100_000, seed: 4), keepingOpen: newer))
        #expect(tunnel.remoteMetrics.resumptionCount == 1)
    }

    @Test(arguments: [(maxBytes: 1 << 20, maxAge: 0.0), (maxBytes: 0, maxAge: 1.0)])
    func aLinkMovesToFreshConnectionsWithoutAStreamLosingAByte(maxBytes: Int, maxAge: Double) throws {
        var settings = testSettings()
        settings.linkMaxBytes = maxBytes
        settings.linkMaxAge = maxAge
        let tunnel = try Tunnel(.native, local: settings)
        let interactive = try InteractiveProbe(through: tunnel.client)
        let data = pattern(count: 16 << 20, seed: 5)
        let started = ContinuousClock.now
        var rounds = 0
        while ContinuousClock.now - started < .seconds(3.5) {
            #expect(try echoesExactly(data, through: tunnel.client))
            rounds += 1
        }
        let probe = interactive.stop()
        let moves = tunnel.localMetrics.resumptionCount
        print(
            "measured: \(maxBytes > 0 ? "--link-max-bytes 1M" : "--link-max-age 1"): \(moves) moves in \(rounds) × 16 MiB echoed; interactive round trips \(probe.roundTrips), longest \(Int(probe.worst * 1000)) ms"
        )
        #expect(moves >= 2)
        #expect(probe.failure == nil)
    }
}

/// A client that sends a 64-byte message through a stream every 10 ms and waits for its echo, on a thread of its
/// own, checking each one and keeping the longest round trip (one still waited for counts as long as it has
/// waited so far). An echo is awaited for a minute, so that a failure tells a late echo (a long round trip) from a
/// lost or altered one (`failure`).
final class InteractiveProbe: Sendable {
    private let socket: Socket
    private let state = Locked(
        (
            roundTrips: 0, worst: 0.0, worstSinceReset: 0.0, waitingSince: ContinuousClock.Instant?.none,
            failure: String?.none
        ))
    private let stopping = Completion()
    private let stopped = Completion()

    init(through endpoint: Endpoint) throws {
        socket = try connect(to: endpoint)
        socket.setNoDelay()
        let (socket, state, stopping, stopped) = (socket, state, stopping, stopped)
        try startThread(named: "interactive") {
            defer { stopped.complete() }
            var number: UInt64 = 0
            while !stopping.wait(seconds: 0.01) {
                let message = pattern(count: 64, seed: number)
                let sent = ContinuousClock.now
                state.withLock { $0.waitingSince = sent }
                guard (try? socket.sendAll(message)) != nil else {
                    return state.withLock { $0.failure = "message \(number) could not be sent" }
                }
                let echo = receive(socket, limit: 64, within: 60)
                guard echo.bytes == message else {
                    let altered = echo.bytes.count == message.count ? " (altered)" : ""
                    return state.withLock { $0.failure = "message \(number)'s echo: \(echo)\(altered)" }
                }
                let seconds = (ContinuousClock.now - sent).inSeconds
                state.withLock {
                    $0.waitingSince = nil
                    $0.roundTrips += 1
                    $0.worst = max($0.worst, seconds)
                    $0.worstSinceReset = max($0.worstSinceReset, seconds)
                }
                number += 1
            }
        }
    }

    /// Round trips completed so far.
    var roundTrips: Int { state.withLock { $0.roundTrips } }

    /// The longest round trip since the last reset, counting the one under way; with `reset`, starts a new one.
    @discardableResult
    func worstRoundTrip(reset: Bool) -> Double {
        state.withLock { state in
            defer { if reset { state.worstSinceReset = 0 } }
            let waited = state.waitingSince.map { (ContinuousClock.now - $0).inSeconds } ?? 0
            return max(state.worstSinceReset, waited)
        }
    }

    /// Stops the probe and says how it went: `failure` names the first message not echoed exactly, and what came.
    func stop() -> (roundTrips: Int, worst: Double, failure: String?) {
        stopping.complete()
        stopped.wait(seconds: 90)
        socket.close()
        return state.withLock { ($0.roundTrips, $0.worst, $0.failure) }
    }
}
