import Crypto
import Glibc
import Testing

@testable import Mux

/// Two real links whose session may resume, joined by socketpairs in one process: a connection cut under a
/// stream, then the session continued on a new pair, as the agents do it (docs/PROTOCOL.md §10) without their
/// SESSION exchange, which the test plays by handing each side the other's count.
@Suite(.timeLimit(.minutes(1)))
final class LinkResumptionTests {
    private let local: Link
    private let remote: Link
    private let acceptor = PairingDelegate()
    private let localDelegate = RecordingDelegate()
    private let localSlots = TestSlots(10)

    convenience init() throws {
        try self.init(resumeTimeout: 30)
    }

    init(resumeTimeout: Double) throws {
        let (localEnd, remoteEnd) = try connectedPair()
        let (client, server) = try handshakeKeys()
        var settings = TunnelSettings().link
        settings.resumeTimeout = resumeTimeout
        local = try makeLink(
            .local, over: localEnd, keys: client.clientSide(), resumption: client.resumption, settings: settings,
            slots: localSlots, delegate: localDelegate)
        remote = try makeLink(
            .remote, over: remoteEnd, keys: server.serverSide(), resumption: server.resumption, settings: settings,
            slots: TestSlots(10), delegate: acceptor)
    }

    deinit {
        local.close(.localShutdown)
        remote.close(.localShutdown)
    }

    /// Cuts the local link's connection, as a reset on the path would: both ends see it end.
    private func cut() {
        local.connection?.shutDown()
    }

    /// Continues the session on a new socketpair, as the agents would on a new connection.
    private func reconnect() throws {
        let (localEnd, remoteEnd) = try connectedPair()
        let (client, server) = try handshakeKeys()
        let peer = Endpoint(host: "socketpair", port: 0)
        #expect(local.suspend(for: .resumedElsewhere) != nil)
        #expect(remote.suspend(for: .resumedElsewhere) != nil)
        try remote.resume(
            on: LinkConnection(channel: remoteEnd, peer: peer, keys: server.serverSide(), binding: server.binding),
            peerReceived: local.receivedFrames.load(ordering: .relaxed))
        try local.resume(
            on: LinkConnection(channel: localEnd, peer: peer, keys: client.clientSide(), binding: client.binding),
            peerReceived: remote.receivedFrames.load(ordering: .relaxed))
    }

    private func openClient() throws -> Socket {
        try openCarriedClient(on: local, slots: localSlots, receiveTimeout: 10)
    }

    @Test func aLostConnectionDetachesBothEndsAndTheirStreamsWait() throws {
        let client = try openClient()
        defer { client.close() }
        _ = try #require(acceptor.target(0))
        cut()
        #expect(eventually { local.isDetached && remote.isDetached })
        #expect(localDelegate.detachments.withLock { $0 } == 1)
        #expect(!local.isClosed && local.streamCount == 1 && remote.streamCount == 1)
    }

    @Test func aStreamCarriesEveryByteInOrderBothWaysAcrossThreeNewConnections() throws {
        let client = try openClient()
        defer { client.close() }
        let target = try #require(acceptor.target(0))
        defer { target.close() }
        target.setReceiveTimeout(seconds: 10)
        // Several windows each way, so that credit, acknowledgements and data cross every cut.
        let upload = pattern(6_000_000, seed: 1)
        let download = pattern(6_000_000, seed: 2)
        try startThread(named: "test-upload") {
            try? client.sendAll(upload)
            client.shutdown(.write)
        }
        try startThread(named: "test-download") {
            try? target.sendAll(download)
            target.shutdown(.write)
        }
        let received = Locked<[UInt8]>([])
        let downloaded = Completion()
        try startThread(named: "test-read") {
            received.withLock { $0 = readAll(client) }
            downloaded.complete()
        }
        for _ in 0..<3 {
            #expect(eventually { self.remote.receivedFrames.load(ordering: .relaxed) > 20 })
            cut()
            #expect(eventually { self.local.isDetached && self.remote.isDetached })
            try reconnect()
        }
        #expect(readAll(target) == upload)
        #expect(downloaded.wait(seconds: 30))
        #expect(received.withLock { $0 } == download)
        #expect(eventually { local.streamCount == 0 && remote.streamCount == 0 })
    }

    @Test func pastTheResumeTimeoutTheLinkEndsAndItsStreamsWithIt() throws {
        let short = try LinkResumptionTests(resumeTimeout: 0.3)
        let client = try short.openClient()
        defer { client.close() }
        _ = try #require(short.acceptor.target(0))
        short.cut()
        #expect(short.localDelegate.awaitClose() == .notResumed(seconds: 0))
        #expect(readAll(client).isEmpty)
    }
}

/// `count` bytes that differ with `seed`, and are not one byte repeated.
private func pattern(_ count: Int, seed: UInt32) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: UInt32($0) &* 2_654_435_761 &+ seed &* 97 >> 7) }
}
