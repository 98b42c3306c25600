import Foundation
import Testing

@testable import Mux

/// An unauthenticated flood against the remote agent's port, from other loopback addresses (127.0.0.2 and up),
/// while real agents link through it: the flood must cost no thread per connection, and must not keep anyone
/// with the key out.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct FloodTests {
    /// The numbers of the last flood run, for the log of a test run.
    private func report(_ text: String) {
        FileHandle.standardError.write(Data("FloodTests: \(text)\n".utf8))
    }

    /// Starts a remote agent with `arguments`, a local agent linked before the flood, then the flood; links
    /// three fresh local agents during it and checks each carries data within 6 s, that the remote agent stays
    /// small and the established link untouched. Returns the remote agent, for its log.
    private func linkDuringFlood(remoteArguments: [String], silent: Int, silentSources: Int) throws -> AgentProcess {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let remote = try AgentProcess(
            ["remote", "--listen", "127.0.0.1:0", "--target", "\(target.endpoint)", "--key-file", keyFile]
                + remoteArguments)
        let port = try #require(remote.listeningPort())
        let localArguments = [
            "local", "--listen", "127.0.0.1:0", "--remote", "127.0.0.1:\(port)", "--key-file", keyFile,
        ]
        let established = try AgentProcess(localArguments)
        #expect(established.waitForLog("link up"))
        let establishedClient = Endpoint(host: "127.0.0.1", port: try #require(established.listeningPort()))

        let flood = try Flooder(
            target: Endpoint(host: "127.0.0.1", port: port), silent: silent, silentSources: silentSources,
            churnThreads: 4, seconds: 40)
        defer { flood.stop() }
        // The agent holds silent connections 1 to 3 s (--handshake-timeout 2): wait until the flood has had to
        // open every one of them again, so that the fresh agents meet a flood in its steady state.
        #expect(eventually(within: 15) { flood.silent.opened >= 2 * silent }, "the flood re-opens what is closed")

        var peakThreads = 0
        var linkTimes: [Double] = []
        for _ in 0..<3 {
            let started = Date()
            let fresh = try AgentProcess(localArguments)
            #expect(fresh.waitForLog("link up", seconds: 6), "a fresh local agent links during the flood")
            let client = Endpoint(host: "127.0.0.1", port: try #require(fresh.listeningPort()))
            #expect(try echoesExactly(pattern(count: 100_000, seed: 7), through: client))
            linkTimes.append(Date().timeIntervalSince(started))
            peakThreads = max(peakThreads, remote.status("Threads") ?? .max)
            fresh.send(SIGTERM)
            #expect(fresh.waitForExit() == 0)
        }
        #expect(try echoesExactly(pattern(count: 100_000, seed: 8), through: establishedClient))
        let (churned, silentCounts, received) = (flood.churnedCount, flood.silent, flood.bytesReceived)
        peakThreads = max(peakThreads, remote.status("Threads") ?? .max)
        let peakMemory = (remote.status("VmHWM") ?? .max) / 1024
        flood.stop()

        report(
            "\(remoteArguments.joined(separator: " ")): linked and carried data after "
                + linkTimes.map { String(format: "%.2f", $0) }.joined(separator: ", ") + " s; remote agent at most "
                + "\(peakThreads) threads, \(peakMemory) MiB; flood: \(silentCounts.opened) silent connections opened, "
                + "\(churned) connect-and-close rounds")
        #expect(linkTimes.allSatisfy { $0 < 6 })
        #expect(peakThreads < 64)
        #expect(peakMemory < 150)
        #expect(churned > 1000, "the churn really ran")
        #expect(received == 0, "the flood's connections got no byte")
        #expect(established.count(of: "link up") == 1, "the established link was never dropped")
        #expect(established.count(of: " down") == 0)
        return remote
    }

    @Test func freshLocalAgentsLinkWithinSixSecondsWhileAThousandSilentConnectionsAndChurnFloodThePort() throws {
        let remote = try linkDuringFlood(
            remoteArguments: ["--handshake-timeout", "2"], silent: 1000, silentSources: 16)
        let summaries = remote.count(of: "turned away")
        #expect(summaries >= 1 && summaries <= 3, "one summary line per interval, not one per connection")
    }

    @Test func aFullTableShedsPendingStrangersAndStillLetsFreshAgentsLink() throws {
        let remote = try linkDuringFlood(
            remoteArguments: ["--handshake-timeout", "2", "--max-pending", "200", "--max-pending-per-source", "50"],
            silent: 1000, silentSources: 16)
        #expect(remote.waitForLog(" shed (", seconds: 35), "the summary counts the shed connections")
    }

    @Test(.enabled(if: openFileLimit() >= 12_000, "needs 12,000 descriptors per process (ulimit -n)"))
    func tenThousandSilentConnectionsArePendingAtOnceAtAFewKiBEachAndNoThreadApiece() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let remote = try AgentProcess([
            "remote", "--listen", "127.0.0.1:0", "--target", "\(target.endpoint)", "--key-file", keyFile,
            "--handshake-timeout", "60", "--max-pending-per-source", "10000",
        ])
        let port = try #require(remote.listeningPort())
        let idleMemory = try #require(remote.status("VmRSS"))
        let flood = try Flooder(
            target: Endpoint(host: "127.0.0.1", port: port), silent: 10_000, silentSources: 16, churnThreads: 0,
            seconds: 40)
        defer { flood.stop() }
        #expect(eventually(within: 20) { flood.silent.open >= 10_000 && remote.descriptorCount >= 10_000 })
        let perConnection = Double((remote.status("VmRSS") ?? .max) - idleMemory) * 1024 / 10_000
        let threads = remote.status("Threads") ?? .max

        let fresh = try AgentProcess([
            "local", "--listen", "127.0.0.1:0", "--remote", "127.0.0.1:\(port)", "--key-file", keyFile,
        ])
        #expect(fresh.waitForLog("link up", seconds: 6))
        let client = Endpoint(host: "127.0.0.1", port: try #require(fresh.listeningPort()))
        #expect(try echoesExactly(pattern(count: 10_000, seed: 10), through: client))
        report(
            "10,000 pending: \(remote.descriptorCount) descriptors, \(threads) threads, "
                + "\(Int(perConnection)) bytes of agent memory per pending connection")
        #expect(threads < 16)
        #expect(perConnection < 4096, "a few KiB at most per pending connection")
        #expect(flood.bytesReceived == 0)
    }
}

/// The soft limit on this process's descriptors.
func openFileLimit() -> UInt64 {
    var limit = rlimit()
    return getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? UInt64(limit.rlim_cur) : 0
}
