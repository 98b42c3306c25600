import Crypto
import Glibc
import Testing

@testable import Mux

/// Every rule of docs/PROTOCOL.md's frame, stream and flow-control sections, against a real link driven by a
/// raw peer over a socketpair: a broken rule ends the link with the named violation; what the protocol says
/// to ignore is ignored and the link goes on.
@Suite(.timeLimit(.minutes(1)))
struct LinkRuleTests {
    /// Settings whose 64 KiB windows a test can overrun with three DATA frames.
    private var smallWindows: LinkSettings {
        var settings = TunnelSettings().link
        settings.streamWindow = 64 * 1024
        settings.linkReceiveBudget = 64 * 1024
        return settings
    }

    private func expectViolation(
        _ harness: LinkHarness, _ reason: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(harness.awaitClose() == .protocolViolation(reason), sourceLocation: sourceLocation)
    }

    /// Whether the link still answers a PING: it did not end, and did not stall.
    private func answersPing(_ harness: LinkHarness) throws -> Bool {
        try harness.send([.ping(0xC0FFEE)])
        return harness.receive { $0 == .pong(0xC0FFEE) } != nil
    }

    /// A stream the link (local role) opened, answered by the peer with OPEN_OK granting `window`.
    private func openedStream(_ harness: LinkHarness, window: UInt32 = 65_536) throws -> Mux.Stream {
        #expect(harness.slots.tryAcquire())
        let stream = try #require(harness.link.openStream(to: .defaultTarget))
        #expect(harness.receive { if case .open(1, _, _, _) = $0 { true } else { false } } != nil)
        try harness.send([.openOK(1, window: window)])
        #expect(stream.awaitEstablished(within: 10) == .established)
        return stream
    }

    /// A stream the link (local role) opened carrying a client at once, its uplink running; returns the client.
    private func carryClientAtOnce(_ harness: LinkHarness) throws -> Socket {
        #expect(harness.slots.tryAcquire())
        let (client, streamEnd) = try connectedPair()
        let stream = try #require(harness.link.openStream(to: .defaultTarget, carrying: streamEnd))
        try startThread(named: "test-uplink") { stream.run() }
        return client
    }

    // MARK: Stream ids (§6)

    /// A live peer that never answers an OPEN: the opener gives up at its deadline and resets the stream, rather
    /// than hold its thread, descriptor and slot for as long as the link lives.
    @Test func anOpenThePeerNeverAnswersIsResetAtTheDeadline() throws {
        let harness = try LinkHarness(role: .local)
        #expect(harness.slots.tryAcquire())
        let stream = try #require(harness.link.openStream(to: .defaultTarget))
        #expect(harness.receive { if case .open(1, _, _, _) = $0 { true } else { false } } != nil)
        let started = ContinuousClock.now
        #expect(stream.awaitEstablished(within: 0.3) == .unanswered)
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(harness.receive { $0 == .reset(1, .aborted) } != nil)
        #expect(try answersPing(harness), "the link goes on")
    }

    @Test func anAcknowledgementOfFramesNeverSentEndsTheLink() throws {
        let harness = try LinkHarness(role: .local, resumable: true)
        try harness.send([.ack(5)])
        expectViolation(harness, "ACK of 5 frames when 0 were sent")
    }

    @Test func sessionAfterTheConnectionsFirstFrameEndsTheLink() throws {
        let harness = try LinkHarness(role: .remote, resumable: true)
        try harness.send([.session(.begin)])
        expectViolation(harness, "session after the connection's first frame")
    }

    @Test func aLinkWithNothingToSendAcknowledgesEvery128SequencedFrames() throws {
        let harness = try LinkHarness(role: .local, resumable: true)
        // Answers to reverse forwards, sequenced frames that need no answer.
        try harness.send((1...130).map { .listenResult(forward: UInt32($0), .bound, port: 8000) })
        #expect(harness.receive { if case .ack(let count) = $0 { count >= 128 } else { false } } != nil)
    }

    @Test func withoutResumptionALinkKeepsAndAcknowledgesNothing() throws {
        let harness = try LinkHarness(role: .local)
        try harness.send((1...130).map { .listenResult(forward: UInt32($0), .bound, port: 8000) })
        try harness.send([.ping(1)])
        #expect(harness.receive { if case .ack = $0 { true } else { $0 == .pong(1) } } == .pong(1))
        #expect(harness.link.sent.withLock { $0.sentCount } == 0)
    }

    @Test func openWithAnIdOfTheReceiversParityEndsTheLink() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.send([.open(2, window: 65_536, target: .defaultTarget, origin: nil)])
        expectViolation(harness, "OPEN for stream 2, an id of ours")
    }

    @Test func openWhoseIdDoesNotIncreaseEndsTheLink() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.send([
            .open(3, window: 65_536, target: .defaultTarget, origin: nil),
            .open(1, window: 65_536, target: .defaultTarget, origin: nil),
        ])
        expectViolation(harness, "OPEN for stream 1 does not increase the stream id")
    }

    @Test func openOKForAStreamThePeerOpenedEndsTheLink() throws {
        let harness = try LinkHarness(role: .local)
        try harness.send([.openOK(2, window: 65_536)])
        expectViolation(harness, "OPEN_OK for stream 2, which the peer opened")
    }

    @Test func frameForAStreamNeverOpenedEndsTheLink() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.send([.data(5, [1, 2, 3])])
        expectViolation(harness, "frame for stream 5, which was never opened")
    }

    @Test func framesForAStreamThatEndedAreIgnored() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.send([.open(1, window: 65_536, target: .defaultTarget, origin: nil)])
        #expect(eventually { harness.delegate.opened.withLock { $0.count } == 1 })
        harness.delegate.opened.withLock { $0[0] }.refuse(.notAllowed)
        #expect(harness.receive { $0 == .reset(1, .notAllowed) } != nil)
        try harness.send([.data(1, [1]), .fin(1), .window(1, increment: 10), .reset(1, .aborted)])
        #expect(try answersPing(harness), "frames that crossed the RESET are dropped and the link goes on")
    }

    // MARK: Opening and half-close (§6)

    @Test func dataToTheOpenerBeforeOpenOKEndsTheLink() throws {
        let harness = try LinkHarness(role: .local)
        #expect(harness.slots.tryAcquire())
        _ = try #require(harness.link.openStream(to: .defaultTarget))
        try harness.send([.data(1, [1])])
        expectViolation(harness, "DATA on stream 1 before OPEN_OK")
    }

    // MARK: Opening in one round trip (§6)

    @Test func theOpenerSendsItsClientsFirstBytesAndFINWithoutWaitingForOpenOK() throws {
        let harness = try LinkHarness(role: .local)
        let client = try carryClientAtOnce(harness)
        defer { client.close() }
        try client.sendAll(Array("GET /".utf8))
        client.shutdown(.write)
        #expect(harness.receive { if case .open(1, _, _, _) = $0 { true } else { false } } != nil)
        #expect(harness.receive { if case .data(1, _) = $0 { true } else { false } } == .data(1, Array("GET /".utf8)))
        #expect(harness.receive { $0 == .fin(1) } != nil)
    }

    @Test func theOpenerSendsNoMoreThanTheOpeningWindowBeforeOpenOK() throws {
        let harness = try LinkHarness(role: .local)
        let client = try carryClientAtOnce(harness)
        defer { client.close() }
        try startThread(named: "test-client") {
            try? client.sendAll([UInt8](repeating: 9, count: 3 * Limits.openingWindow))
        }
        var sent = 0
        while sent < Limits.openingWindow, case .data(1, let bytes)? = harness.receive(where: \.isData) {
            sent += bytes.count
        }
        #expect(sent == Limits.openingWindow)
        try harness.send([.ping(0xC0FFEE)])
        #expect(harness.receive { $0.isData || $0 == .pong(0xC0FFEE) } == .pong(0xC0FFEE), "DATA past the window")
        try harness.send([.openOK(1, window: UInt32(Limits.openingWindow) + 10)])
        #expect(harness.receive(where: \.isData) == .data(1, [UInt8](repeating: 9, count: 10)))
    }

    @Test func openOKGrantingLessThanTheOpeningWindowEndsTheLink() throws {
        let harness = try LinkHarness(role: .local)
        #expect(harness.slots.tryAcquire())
        _ = try #require(harness.link.openStream(to: .defaultTarget))
        try harness.send([.openOK(1, window: UInt32(Limits.openingWindow) - 1)])
        expectViolation(
            harness,
            "OPEN_OK for stream 1 grants \(Limits.openingWindow - 1) bytes, less than the \(Limits.openingWindow) of the opening window"
        )
    }

    @Test func aSecondOpenOKEndsTheLink() throws {
        let harness = try LinkHarness(role: .local)
        _ = try openedStream(harness)
        try harness.send([.openOK(1, window: 1 << 20)])
        expectViolation(harness, "a second OPEN_OK for stream 1")
    }

    @Test func theAnsweringEndHoldsTheOpenersBytesAndFINUntilItsTargetConnects() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.send([
            .open(1, window: 65_536, target: .defaultTarget, origin: nil), .data(1, Array("EHLO".utf8)), .fin(1),
        ])
        #expect(eventually { harness.delegate.opened.withLock { $0.count } == 1 })
        try harness.send([.ping(0xC0FFEE)])
        #expect(harness.receive { $0 == .pong(0xC0FFEE) } != nil, "held bytes are no violation")
        let (streamEnd, target) = try connectedPair()
        defer { target.close() }
        #expect(harness.delegate.opened.withLock { $0[0] }.accept(streamEnd))
        target.setReceiveTimeout(seconds: 5)
        var buffer = [UInt8](repeating: 0, count: 4)
        #expect(recv(target.fd, &buffer, 4, Int32(MSG_WAITALL)) == 4)
        #expect(buffer == Array("EHLO".utf8))
        #expect(recv(target.fd, &buffer, 4, 0) == 0, "the opener's FIN, after its bytes")
        #expect(harness.receive { if case .openOK(1, _) = $0 { true } else { false } } != nil)
    }

    @Test func bytesBeyondTheOpeningWindowBeforeOpenOKEndTheLink() throws {
        let harness = try LinkHarness(role: .remote)
        let full = [UInt8](repeating: 7, count: Limits.maxDataPayload)
        try harness.send([
            .open(1, window: 65_536, target: .defaultTarget, origin: nil), .data(1, full), .data(1, full),
            .data(1, [1]),
        ])
        expectViolation(
            harness, "stream 1 sent more than the \(Limits.openingWindow) bytes of the opening window before OPEN_OK")
    }

    @Test func dataAfterFINEndsTheLink() throws {
        let harness = try LinkHarness(role: .local)
        _ = try openedStream(harness)
        try harness.send([.fin(1), .data(1, [1])])
        expectViolation(harness, "DATA on stream 1 after FIN")
    }

    @Test func aSecondFINEndsTheLink() throws {
        let harness = try LinkHarness(role: .local)
        _ = try openedStream(harness)
        try harness.send([.fin(1), .fin(1)])
        expectViolation(harness, "unexpected FIN on stream 1")
    }

    // MARK: Flow control (§7)

    @Test func dataBeyondTheGrantedWindowEndsTheLink() throws {
        let harness = try LinkHarness(role: .local, settings: smallWindows)
        _ = try openedStream(harness)
        let full = [UInt8](repeating: 7, count: Limits.maxDataPayload)
        try harness.send([.data(1, full), .data(1, full), .data(1, [1])])
        expectViolation(harness, "stream 1 overran its window")
    }

    @Test func dataUpToTheGrantedWindowIsAccepted() throws {
        let harness = try LinkHarness(role: .local, settings: smallWindows)
        _ = try openedStream(harness)
        let full = [UInt8](repeating: 7, count: Limits.maxDataPayload)
        try harness.send([.data(1, full), .data(1, full)])
        #expect(try answersPing(harness))
    }

    @Test func windowBeyondTwoToTheThirtyTwoEndsTheLink() throws {
        let harness = try LinkHarness(role: .local)
        _ = try openedStream(harness, window: UInt32.max - 10)
        try harness.send([.window(1, increment: 100)])
        expectViolation(harness, "stream 1 window overflow")
    }

    // MARK: Frames and sealing (§4, §5)

    @Test func frameLongerThanTheLargestEndsTheLinkBeforeItsBodyArrives() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.sendSealedBody([UInt8](repeating: 0, count: Limits.maxFrameBody + 1))
        expectViolation(harness, "\(FrameError.tooLong(length: Limits.maxFrameBody + 1, limit: Limits.maxFrameBody))")
    }

    @Test func frameOfAnUnknownKindEndsTheLink() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.sendSealedBody([200, 0, 0, 0, 0])
        expectViolation(harness, "\(FrameError.unknownKind(200))")
    }

    @Test func alteredBytesEndTheLink() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.sendRaw([UInt8](repeating: 0x55, count: SealedFrame.lengthBlockSize))
        #expect(harness.awaitClose()?.description.hasPrefix("protocol violation") == true)
    }

    @Test func listenSentToTheLocalAgentEndsTheLink() throws {
        let harness = try LinkHarness(role: .local)
        try harness.send([.listen(forward: 1, kind: .tcp, address: Endpoint(host: "127.0.0.1", port: 80))])
        expectViolation(harness, "LISTEN sent to the local agent")
    }

    @Test func listenResultSentToTheRemoteAgentEndsTheLink() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.send([.listenResult(forward: 1, .bound, port: 80)])
        expectViolation(harness, "LISTEN_RESULT sent to the remote agent")
    }

    @Test func agentIDSentToTheRemoteAgentEndsTheLink() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.send([.agentID(7)])
        expectViolation(harness, "AGENT_ID sent to the remote agent")
    }

    @Test func theRemoteAgentNamesItselfOncePerLink() throws {
        let harness = try LinkHarness(role: .local)
        try harness.send([.agentID(7)])
        #expect(harness.link.identified.wait(seconds: 5))
        #expect(harness.link.peerAgentID == 7)
        try harness.send([.agentID(8)])
        expectViolation(harness, "a second AGENT_ID")
    }

    // MARK: Liveness (§8) and padding (§4.1)

    @Test func pingIsAnsweredWithPongOfTheSameValueAndPaddingIsDropped() throws {
        let harness = try LinkHarness(role: .remote)
        try harness.send([.padding(count: Limits.maxPadding), .padding(count: 0)])
        #expect(try answersPing(harness))
    }

    @Test func peerThatSendsPingsWithoutReadingTheAnswersEndsTheLink() throws {
        let harness = try LinkHarness(role: .remote)
        // Far more PONGs than the socket buffers hold: they pile up in the link's queue unless it is bounded.
        for batch in 0..<40 {
            // Once the link has ended, sending fails (EPIPE): that is the end of the flood.
            guard (try? harness.send((0..<500).map { .ping(UInt64(batch * 500 + $0)) })) != nil else { break }
        }
        expectViolation(
            harness, "the peer sent \(Limits.maxQueuedAnswers) frames that need an answer without reading one")
    }

    @Test func peerThatOpensStreamsItIsRefusedWithoutReadingTheRefusalsEndsTheLink() throws {
        let harness = try LinkHarness(role: .remote)
        harness.link.beginDrain()  // every OPEN from now on is answered with RESET
        for batch in 0..<40 {
            let first = UInt32(batch * 500) * 2 + 1
            let opens = (0..<500).map {
                Frame.open(first + UInt32($0) * 2, window: 65_536, target: .defaultTarget, origin: nil)
            }
            guard (try? harness.send(opens)) != nil else { break }
        }
        expectViolation(
            harness, "the peer sent \(Limits.maxQueuedAnswers) frames that need an answer without reading one")
    }

    /// The drain race: a drain that begins after the reader's first look at an OPEN but before the stream is
    /// registered must still refuse it. Registered anyway, the stream ran outside the drain's count, so the
    /// drain reported every stream ended while this one was open.
    @Test func openThatArrivesAsADrainBeginsIsRefusedAndNotHandedToTheAgent() throws {
        let harness = try LinkHarness(role: .remote)
        let link = harness.link
        harness.slots.onAcquire { link.beginDrain() }  // between the reader's two checks of the drain
        try harness.send([.open(1, window: 65_536, target: .defaultTarget, origin: nil)])
        #expect(harness.receive { $0 == .reset(1, .aborted) } != nil)
        #expect(harness.delegate.opened.withLock { $0.isEmpty })
        #expect(link.streamCount == 0)
        #expect(link.waitUntilDrained(deadline: .now + .seconds(5)))
    }

    @Test func theLinkPingsAtOnceToMeasureTheRoundTrip() throws {
        let harness = try LinkHarness(role: .local)
        let ping = try #require(harness.receive { if case .ping = $0 { true } else { false } })
        guard case .ping(let value) = ping else { return }
        try harness.send([.pong(value)])
        #expect(eventually { harness.link.roundTrip != nil })
    }
}

/// Polls `condition` every 10 ms for up to 5 s.
func eventually(_ condition: () -> Bool) -> Bool {
    for _ in 0..<500 {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

extension Frame {
    fileprivate var isData: Bool { if case .data = self { true } else { false } }
}
