import Crypto
import Foundation
import Testing

@testable import Mux

/// The TLS transport as an operator sets it up, with agent processes and a real cover (Debian's nginx,
/// `.coverSite`): what each mistake is told, what `--check` says, and what strangers can make the remote
/// agent hold.
@Suite(.serialized, .coverSite, .timeLimit(.minutes(3)))
struct TLSTransportSetupTests {
    private func tlsRemote(cover: CoverSite, keyFile: String, extra: [String] = []) throws -> (AgentProcess, UInt16) {
        let remote = try AgentProcess(
            [
                "remote", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:9", "--key-file", keyFile,
                "--transport", "tls", "--cover", "\(cover.endpoint)",
            ] + extra)
        return (remote, try #require(remote.listeningPort()))
    }

    private func local(remotePort: UInt16, keyFile: String, transport: [String]) throws -> AgentProcess {
        try AgentProcess(
            [
                "local", "--listen", "127.0.0.1:0", "--remote", "127.0.0.1:\(remotePort)", "--key-file", keyFile,
                "--handshake-timeout", "2",
            ] + transport)
    }

    @Test func localAgentOfTheTLSTransportLinkingToANativeRemoteAgentIsToldItGotNoReply() throws {
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let remote = try AgentProcess(
            ["remote", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:9", "--key-file", keyFile])
        let port = try #require(remote.listeningPort())
        let local = try local(
            remotePort: port, keyFile: keyFile, transport: ["--transport", "tls", "--sni", CoverSite.serverName])
        #expect(local.waitForLog("no handshake reply (", seconds: 15))
        #expect(local.standardError.contains("another --transport"))
    }

    @Test func localAgentOfTheNativeTransportLinkingToATLSRemoteAgentIsToldTheAnswerIsNotItsTransports() throws {
        let cover = try CoverSite.current
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let (remote, port) = try tlsRemote(cover: cover, keyFile: keyFile)
        let local = try local(remotePort: port, keyFile: keyFile, transport: [])
        // The native hello is relayed to the cover: nginx answers it with an HTTP error page.
        #expect(local.waitForLog("not as a remote agent of this --transport does", seconds: 15))
        #expect(remote.waitForLog("not authentic", seconds: 40))
    }

    @Test func localAgentWithAnotherKeyIsToldTheRemoteAgentAnsweredAsItsCover() throws {
        let cover = try CoverSite.current
        let remoteKey = try makeKeyFile()
        let localKey = try makeKeyFile()
        defer {
            try? FileManager.default.removeItem(atPath: remoteKey)
            try? FileManager.default.removeItem(atPath: localKey)
        }
        let (remote, port) = try tlsRemote(cover: cover, keyFile: remoteKey)
        let local = try local(
            remotePort: port, keyFile: localKey, transport: ["--transport", "tls", "--sni", CoverSite.serverName])
        #expect(
            local.waitForLog("answered as a TLS server that is not a tcptunnel agent holding this key", seconds: 15))
        #expect(remote.waitForLog("not authentic", seconds: 40))
    }

    @Test func localAgentsStillLinkWhenTheCoverGoesDown() throws {
        let site = try CoverSite.current
        let cover = try MessageLoggingCover(certificate: site.certificatePath, key: site.keyPath)
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let remote = try AgentProcess(
            [
                "remote", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:9", "--key-file", keyFile,
                "--transport", "tls", "--cover", "\(cover.endpoint)",
            ])
        let port = try #require(remote.listeningPort())
        cover.stop()  // its connections are now refused at once
        let local = try local(
            remotePort: port, keyFile: keyFile, transport: ["--transport", "tls", "--sni", CoverSite.serverName])
        #expect(local.waitForLog("link up to", seconds: 10))
    }

    @Test func sigtermStopsARemoteAgentOfTheTLSTransportAtOnce() throws {
        let cover = try CoverSite.current
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let (remote, _) = try tlsRemote(cover: cover, keyFile: keyFile)
        let start = ContinuousClock.now
        remote.send(SIGTERM)
        #expect(remote.waitForExit(seconds: 10) == 0)
        #expect(ContinuousClock.now - start < .seconds(2), "its cover probe thread wakes to stop")
    }

    @Test func remoteAgentWhoseCoverRefusesConnectionsDoesNotStart() throws {
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let closed = try HeldLoopbackPort()
        defer { closed.release() }
        let remote = try AgentProcess(
            [
                "remote", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:9", "--key-file", keyFile, "--transport",
                "tls", "--cover", "127.0.0.1:\(closed.port)",
            ])
        #expect(remote.waitForExit() == 1)
        #expect(
            remote.standardError.contains(
                "cannot use 127.0.0.1:\(closed.port) as the cover: connect: Connection refused"))
    }

    @Test func remoteAgentWhoseCoverSpeaksOnlyTLS12DoesNotStart() throws {
        let cover = try CoverSite.current
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let old = try MessageLoggingCover(certificate: cover.certificatePath, key: cover.keyPath, extra: ["-tls1_2"])
        defer { old.stop() }
        let remote = try AgentProcess(
            [
                "remote", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:9", "--key-file", keyFile, "--transport",
                "tls", "--cover", "\(old.endpoint)",
            ])
        #expect(remote.waitForExit() == 1)
        #expect(remote.standardError.contains("as the cover: it does not speak TLS 1.3"))
    }

    @Test func checkSaysHowTheCoverAnswers() throws {
        let cover = try CoverSite.current
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let check = try run(
            AgentProcess.binary.path,
            [
                "remote", "--listen", "127.0.0.1:0", "--key-file", keyFile, "--transport", "tls", "--cover",
                "\(cover.endpoint)", "--check",
            ])
        let text = String(decoding: check.output, as: UTF8.self)
        #expect(check.status == 0)
        #expect(text.contains("transport = \"tls\"\ncover = \"\(cover.endpoint)\"  # answers TLS 1.3, "))
    }

    @Test func oneSourceHoldsAtMostItsShareOfRelaysAndNoneCostsAThread() throws {
        let cover = try CoverSite.current
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let metricsPort = try freeLoopbackPort()
        let (remote, port) = try tlsRemote(
            cover: cover, keyFile: keyFile, extra: ["--metrics", "127.0.0.1:\(metricsPort)"])
        let threads = try #require(remote.status("Threads"))
        var generator = SystemRandomNumberGenerator()
        let strangers = try (0..<(Limits.maxCoverRelaysPerSource + 10)).map { _ in
            let fd = Flooder.connect(from: "127.0.0.2", port: port)
            let socket = Socket(fd: fd)
            var hello = BrowserClientHello(
                serverName: CoverSite.serverName, x25519Share: try TLSHelloAuthentication.unusedX25519PublicKey(),
                hybridX25519Share: try TLSHelloAuthentication.unusedX25519PublicKey(),
                echKey: try TLSHelloAuthentication.unusedX25519PublicKey(), using: &generator)
            hello.fill(random: randomBytes(32, using: &generator), sessionID: randomBytes(32, using: &generator))
            try socket.sendAll(hello.bytes)
            return socket
        }
        defer { for stranger in strangers { stranger.close() } }
        let relays = { try? self.metric("tcptunnel_cover_relays", port: metricsPort) }
        #expect(eventually(within: 10) { relays() == Double(Limits.maxCoverRelaysPerSource) })
        #expect(eventually(within: 10) { remote.count(of: "turned away") > 0 })
        #expect(remote.status("Threads") == threads)
        // The oldest were closed to make room, with a reset; the newest are still talking to the cover.
        #expect(isClosed(strangers[0]))
        #expect(!isClosed(strangers[strangers.count - 1]))
    }

    @Test func aSilentStrangerIsClosedWhenTheCoverClosesItNotAtTheAgentsDeadline() throws {
        let cover = try CoverSite.current
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        // The agent's own deadline for a hello would be 10 to 30 s.
        let (remote, port) = try tlsRemote(cover: cover, keyFile: keyFile, extra: ["--handshake-timeout", "20"])
        let stranger = try connect(to: Endpoint(host: "127.0.0.1", port: port))
        defer { stranger.close() }
        let closed = withExtendedLifetime(remote) { receive(stranger, within: 15) }
        #expect([.endOfStream, .reset].contains(closed.ending), "\(closed)")
        print(
            "measured: a silent stranger at the agent's port was closed after \(closed.seconds) s (nginx closes silent clients after \(CoverSite.silenceTimeout) s)"
        )
        #expect(closed.seconds >= CoverSite.silenceTimeout - 0.5 && closed.seconds < CoverSite.silenceTimeout + 2)
    }

    @Test func aPendingStrangerShedForRoomIsRelayedNotClosed() throws {
        let cover = try CoverSite.current
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let (remote, port) = try tlsRemote(
            cover: cover, keyFile: keyFile, extra: ["--handshake-timeout", "20", "--max-pending-per-source", "4"])
        // Five silent connections from one source: the fifth sheds the first from the pending table.
        let strangers = (0..<5).map { _ in Socket(fd: Flooder.connect(from: "127.0.0.3", port: port)) }
        defer { for stranger in strangers { stranger.close() } }
        withExtendedLifetime(remote) {
            Thread.sleep(forTimeInterval: 1)
            #expect(!isClosed(strangers[0]), "the shed stranger is still talking to the cover")
            let closed = receive(strangers[0], within: 10)
            #expect([.endOfStream, .reset].contains(closed.ending), "\(closed)")
            #expect(closed.seconds < CoverSite.silenceTimeout + 2)
            #expect(remote.count(of: "1 shed") > 0 || remote.waitForLog("1 shed", seconds: 5))
        }
    }

    @Test func aRelayWhoseCoverResetItKeepsNoThreadBusy() throws {
        let cover = try CoverSite.current
        let keyFile = try makeKeyFile()
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let (remote, port) = try tlsRemote(cover: cover, keyFile: keyFile)
        let stranger = try connect(to: Endpoint(host: "127.0.0.1", port: port))
        defer { stranger.close() }
        // nginx answers plain HTTP on its TLS port with an error page and closes; the byte sent after that
        // makes its kernel answer with a reset, which the relay's cover side then reports.
        try stranger.sendAll(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        _ = receive(stranger, limit: 1 << 16, within: 5)
        _ = try? stranger.sendAll([0x41])
        Thread.sleep(forTimeInterval: 0.5)
        let before = try cpuSeconds(of: remote)
        Thread.sleep(forTimeInterval: 2)
        let busy = try cpuSeconds(of: remote) - before
        print("measured: the remote agent used \(busy) s of CPU in 2 s beside a relay whose cover reset it")
        #expect(busy < 0.2)
    }

    /// User and system CPU seconds the process has used, from /proc/PID/stat.
    private func cpuSeconds(of agent: AgentProcess) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(agent.process.processIdentifier)/stat", encoding: .utf8)
        let fields = stat[stat.lastIndex(of: ")")!...].split(separator: " ")
        return Double(Int(fields[12])! + Int(fields[13])!) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The value of `series` at the agent's metrics endpoint.
    private func metric(_ series: String, port: UInt16) throws -> Double? {
        let scrape = try run("/usr/bin/curl", ["-s", "--max-time", "5", "http://127.0.0.1:\(port)/metrics"])
        return String(decoding: scrape.output, as: UTF8.self).split(separator: "\n")
            .first { $0.hasPrefix(series + " ") }.flatMap { Double($0.dropFirst(series.count + 1)) }
    }

    /// Whether the connection has been closed or reset by the other end (after reading what is pending).
    private func isClosed(_ socket: Socket) -> Bool {
        socket.setReceiveTimeout(seconds: 0.2)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let result = buffer.withUnsafeMutableBytes { raw in
                Result { () throws(SocketError) in try socket.receive(into: raw) }
            }
            switch result {
            case .success(0): return true
            case .success: continue
            case .failure(let error): return !error.isTimeout
            }
        }
    }
}
