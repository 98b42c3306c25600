import Glibc
import Testing

@testable import Mux

/// Accepts every stream the peer opens onto a fresh socketpair, as a remote agent would onto a target, unless
/// told to refuse the next one; the test plays the target at the other end.
final class PairingDelegate: LinkDelegate, @unchecked Sendable {  // every field is a `Locked`
    let targets = Locked<[Socket]>([])
    let streams = Locked<[Mux.Stream]>([])
    let refusesNext = Locked<ResetReason?>(nil)

    func link(_ link: Link, didOpen stream: Mux.Stream, to target: StreamTarget, from origin: StreamOrigin?) {
        if let reason = refusesNext.withLock({ $0.take() }) { return stream.refuse(reason) }
        guard let (streamEnd, targetEnd) = try? connectedPair() else { return stream.refuse(.aborted) }
        targets.withLock { $0.append(targetEnd) }
        streams.withLock { $0.append(stream) }
        do {
            try startThread(named: "test-acceptor") {
                if stream.accept(streamEnd) { stream.run() } else { stream.abandon() }
            }
        } catch {
            stream.refuse(.aborted)
        }
    }

    func link(_ link: Link, didOpenFlow id: FlowID, to target: StreamTarget, from origin: StreamOrigin?) -> ResetReason?
    {
        .notAllowed
    }

    func link(_ link: Link, didRequestListen address: Endpoint, kind: TrafficKind, forward: UInt32) {}
    func link(_ link: Link, didCancelListen forward: UInt32) {}
    func link(_ link: Link, didAnswerListen forward: UInt32, result: ListenResult, port: UInt16) {}
    func linkDidDetach(_ link: Link) {}
    func linkDidClose(_ link: Link, reason: LinkError) {}

    /// The target end of the `index`th stream opened, once it was.
    func target(_ index: Int) -> Socket? {
        guard eventually({ targets.withLock { $0.count } > index }) else { return nil }
        return targets.withLock { $0[index] }
    }
}

/// Two real links, a local and a remote one, joined by a socketpair in one process: streams cross them end to
/// end with no agent, port or sleep involved.
@Suite(.timeLimit(.minutes(1)))
final class LinkPairTests {
    private let local: Link
    private let remote: Link
    private let acceptor = PairingDelegate()
    private let localSlots = TestSlots(10)

    init() throws {
        let (localEnd, remoteEnd) = try connectedPair()
        let (localKeys, remoteKeys) = try linkKeys(for: .local)
        let settings = TunnelSettings().link
        local = try makeLink(
            .local, over: localEnd, keys: localKeys, settings: settings, slots: localSlots,
            delegate: RecordingDelegate())
        remote = try makeLink(
            .remote, over: remoteEnd, keys: remoteKeys, settings: settings, slots: TestSlots(10), delegate: acceptor)
    }

    deinit {
        local.close(.localShutdown)
        remote.close(.localShutdown)
    }

    /// Opens a stream on the local link and carries a client's socketpair end on it; returns the client's end.
    private func openClient() throws -> Socket {
        try openCarriedClient(on: local, slots: localSlots, receiveTimeout: 5)
    }

    /// Whether a few bytes the client sends, then its FIN, reach the target as they were; closes both ends.
    private func carries(_ client: Socket, to target: Socket) throws -> Bool {
        defer {
            client.close()
            target.close()
        }
        let message = Array("still carried".utf8)
        try client.sendAll(message)
        client.shutdown(.write)
        target.setReceiveTimeout(seconds: 5)
        return readAll(target) == message
    }

    @Test func bytesCrossBothWaysInOrderAndEachEndSeesTheOthersFIN() throws {
        let client = try openClient()
        let target = try #require(acceptor.target(0))
        target.setReceiveTimeout(seconds: 5)
        // More than a stream window, so that credit has to come back for the rest to cross.
        let upload = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try startThread(named: "test-upload") {
            try? client.sendAll(upload)
            client.shutdown(.write)
        }
        #expect(readAll(target) == upload)
        let reply = Array("done".utf8)
        try target.sendAll(reply)
        target.shutdown(.write)
        #expect(readAll(client) == reply)
        #expect(eventually { local.streamCount == 0 && remote.streamCount == 0 })
        client.close()
        target.close()
    }

    @Test func aStreamResetByThePeerEndsAloneAndItsClientSeesTheEnd() throws {
        let first = try openClient()
        _ = try #require(acceptor.target(0))
        let second = try openClient()
        let secondTarget = try #require(acceptor.target(1))
        let firstOnRemote = try #require(acceptor.streams.withLock { $0.first })
        firstOnRemote.abort(sending: .aborted)  // as the remote agent does when its target stops reading

        #expect(eventually { local.streamCount == 1 && remote.streamCount == 1 })
        var byte: UInt8 = 0
        #expect(recv(first.fd, &byte, 1, 0) == 0, "the client's end was not ended")
        #expect(try carries(second, to: secondTarget))
        first.close()
    }

    @Test func aStreamThePeerRefusesGetsItsReasonAndTheLinkGoesOn() throws {
        acceptor.refusesNext.withLock { $0 = .notAllowed }
        #expect(localSlots.tryAcquire())
        let refused = try #require(local.openStream(to: .defaultTarget))
        #expect(refused.awaitEstablished(within: 10) == .refused(.notAllowed))
        refused.abandon()
        #expect(eventually { local.streamCount == 0 })

        let client = try openClient()
        let target = try #require(acceptor.target(0))
        #expect(try carries(client, to: target))
    }

    /// Carries a client's socketpair end on a new stream at once, as a local agent carries a forward's client;
    /// returns the client's end and what the uplink thread learnt of the OPEN once the stream ended.
    private func carryClientAtOnce() throws -> (Socket, Completion, Locked<Mux.StreamOpenOutcome?>) {
        #expect(localSlots.tryAcquire())
        let (client, streamEnd) = try connectedPair()
        let stream = try #require(local.openStream(to: .defaultTarget, carrying: streamEnd))
        let ended = Completion()
        let outcome = Locked<Mux.StreamOpenOutcome?>(nil)
        try startThread(named: "test-client") {
            stream.run()
            outcome.withLock { $0 = stream.awaitEstablished(within: 10) }
            ended.complete()
        }
        client.setReceiveTimeout(seconds: 5)
        return (client, ended, outcome)
    }

    @Test func aClientCarriedAtOnceCrossesBothWays() throws {
        let (client, ended, outcome) = try carryClientAtOnce()
        let request = Array("first request".utf8)
        try client.sendAll(request)
        client.shutdown(.write)
        let target = try #require(acceptor.target(0))
        target.setReceiveTimeout(seconds: 5)
        #expect(readAll(target) == request)
        try target.sendAll(Array("answer".utf8))
        target.shutdown(.write)
        #expect(readAll(client) == Array("answer".utf8))
        #expect(ended.wait(seconds: 5))
        #expect(outcome.withLock { $0 } == .established)
        client.close()
        target.close()
    }

    @Test func aClientCarriedAtOnceThatThePeerRefusesIsEndedWithTheReason() throws {
        acceptor.refusesNext.withLock { $0 = .targetRefused }
        let (client, ended, outcome) = try carryClientAtOnce()
        _ = try? client.sendAll(Array("dropped".utf8))  // the refusal may have ended the stream already
        #expect(ended.wait(seconds: 5))
        #expect(outcome.withLock { $0 } == .refused(.targetRefused))
        #expect(readAll(client).isEmpty, "the client sees the end and no byte")
        #expect(eventually { local.streamCount == 0 && remote.streamCount == 0 })
        client.close()
    }
}
