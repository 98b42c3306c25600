import Testing

@testable import Mux

@Suite struct FrameCodecTests {
    private func encode(_ frame: Frame) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: FrameCodec.encodedSize(of: frame))
        bytes.withUnsafeMutableBytes { FrameCodec.encode(frame, into: $0.baseAddress!) }
        return bytes
    }

    private func decode(_ bytes: [UInt8]) throws -> Frame {
        try bytes.withUnsafeBytes { try FrameCodec.decode($0) }
    }

    static let everyKind: [Frame] = [
        .open(1, window: 1 << 20, target: .defaultTarget, origin: nil),
        .open(3, window: 1, target: .endpoint(Endpoint(host: "10.1.2.3", port: 22)), origin: nil),
        .open(5, window: 1, target: .endpoint(Endpoint(host: "2001:db8::1", port: 443)), origin: nil),
        .open(7, window: 1, target: .endpoint(Endpoint(host: "db.internal", port: 5432)), origin: nil),
        .open(2, window: 1, target: .reverseForward(3), origin: nil),
        .open(9, window: 1, target: .defaultTarget, origin: origin4),
        .open(11, window: 1, target: .defaultTarget, origin: origin6),
        .openOK(7, window: 65536), .data(3, [1, 2, 3]),
        .fin(5), .reset(6, .targetRefused), .reset(6, .networkUnreachable),
        .window(8, increment: 12345), .ping(0xDEAD_BEEF), .pong(42), .goAway(.shutdown),
        .listen(forward: 1, kind: .tcp, address: Endpoint(host: "0.0.0.0", port: 8080)),
        .listen(forward: 2, kind: .udp, address: Endpoint(host: "::1", port: 5353)),
        .listenResult(forward: 1, .addressInUse, port: 0), .listenResult(forward: 2, .bound, port: 8080),
        .unlisten(forward: 3), .padding(count: 0), .padding(count: Limits.maxPadding), .agentID(0x0102_0304_0506_0708),
        .flowOpen(1, target: .endpoint(Endpoint(host: "10.0.0.53", port: 53)), origin: origin4),
        .flowOpen(3, target: .endpoint(Endpoint(host: "dns.internal", port: 53)), origin: nil),
        .flowOpen(2, target: .reverseForward(1), origin: origin6),
        .datagram(1, []), .datagram(2, [1, 2, 3]), .flowClose(3, .notAllowed), .flowClose(4, .tooManyStreams),
        .ack(0), .ack(.max), .session(.begin),
        .session(.resume(session: Array(1...16), proof: Array(repeating: 7, count: 32), received: 1 << 40)),
        .resumed(.resumed, received: 12), .resumed(.unknown, received: 0),
    ]

    static let origin4 = StreamOrigin(
        source: .init(bytes: [192, 0, 2, 1], port: 51000), destination: .init(bytes: [127, 0, 0, 1], port: 1082))
    static let origin6 = StreamOrigin(
        source: .init(bytes: Array(repeating: 0x20, count: 16), port: 1),
        destination: .init(bytes: Array(repeating: 0, count: 15) + [1], port: 2))

    @Test(arguments: everyKind)
    func everyFrameKindRoundTrips(frame: Frame) throws {
        #expect(try decode(encode(frame)) == frame)
    }

    @Test func largestDataFrameRoundTrips() throws {
        let frame = Frame.data(4, [UInt8](repeating: 9, count: Limits.maxDataPayload))
        #expect(try decode(encode(frame)) == frame)
    }

    @Test func largestDatagramRoundTripsWhole() throws {
        let frame = Frame.datagram(7, [UInt8](repeating: 5, count: Limits.maxDatagram))
        #expect(try decode(encode(frame)) == frame)
        #expect(Limits.maxFrameBody == Frame.headerSize + 65_507)
    }

    @Test func datagramLargerThanUDPCarriesIsMalformed() {
        let bytes = [16, 0, 0, 0, 1] + [UInt8](repeating: 0, count: Limits.maxDatagram + 1)
        #expect(throws: FrameError.malformed(.datagram, "payload of 65508 bytes, expected at most 65507")) {
            try decode(bytes)
        }
    }

    @Test func flowFramesHaveTheirOwnKindsAndAStreamIDAboveZero() {
        #expect(encode(.datagram(0x0102_0304, [9])) == [16, 1, 2, 3, 4, 9])
        #expect(encode(.flowClose(1, .notAllowed)) == [17, 0, 0, 0, 1, 6])
        #expect(
            encode(.flowOpen(1, target: .endpoint(Endpoint(host: "10.1.2.3", port: 53)), origin: nil))
                == [15, 0, 0, 0, 1, 1, 10, 1, 2, 3, 0, 53, 0])
        #expect(throws: FrameError.malformed(.datagram, "stream id 0")) { try decode([16, 0, 0, 0, 0, 1]) }
    }

    @Test func headerIsKindThenBigEndianStreamID() {
        #expect(encode(.fin(0x0102_0304)) == [4, 1, 2, 3, 4])
        #expect(encode(.window(1, increment: 0x10)) == [6, 0, 0, 0, 1, 0, 0, 0, 0x10])
    }

    @Test(arguments: [[], [3], [3, 0, 0, 0]] as [[UInt8]])
    func bodyShorterThanHeaderIsRejected(bytes: [UInt8]) {
        #expect(throws: FrameError.tooShort(length: bytes.count)) { try decode(bytes) }
    }

    @Test func openCarriesItsTargetAsTypeAddressAndPort() {
        let ipv4 = encode(.open(1, window: 2, target: .endpoint(Endpoint(host: "10.1.2.3", port: 22)), origin: nil))
        #expect(ipv4 == [1, 0, 0, 0, 1, 0, 0, 0, 2, 1, 10, 1, 2, 3, 0, 22, 0])
        let name = encode(.open(1, window: 2, target: .endpoint(Endpoint(host: "ab.c", port: 443)), origin: nil))
        #expect(name == [1, 0, 0, 0, 1, 0, 0, 0, 2, 3, 4] + Array("ab.c".utf8) + [1, 0xbb, 0])
        #expect(encode(.open(1, window: 2, target: .defaultTarget, origin: nil)) == [1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0])
    }

    @Test func openCarriesItsClientsOriginAfterTheTarget() {
        let bytes = encode(.open(1, window: 2, target: .defaultTarget, origin: Self.origin4))
        #expect(bytes == [1, 0, 0, 0, 1, 0, 0, 0, 2, 0] + [1, 192, 0, 2, 1, 0xC7, 0x38, 127, 0, 0, 1, 0x04, 0x3A])
    }

    @Test func anIPv4MappedOriginIsReadAsIPv4() throws {
        let mapped = Array(repeating: 0, count: 10) + [0xff, 0xff] as [UInt8]
        let origin = try #require(
            StreamOrigin(
                source: .init(bytes: mapped + [192, 0, 2, 1], port: 51000),
                destination: .init(bytes: mapped + [127, 0, 0, 1], port: 1082)))
        #expect(origin == Self.origin4)
    }

    @Test(
        arguments: [
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 0],  // no origin at all
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 2, 1, 2, 3, 4, 0, 1, 1, 2, 3, 4, 0, 1],  // origin type 2
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1, 1, 2, 3, 4, 0, 1, 1, 2, 3, 4, 0],  // destination port cut short
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 7],  // a byte after an unknown origin
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 4] + Array(repeating: 0, count: 10) + [0xff, 0xff, 1, 2, 3, 4, 0, 1]
                + Array(repeating: 0, count: 10) + [0xff, 0xff, 1, 2, 3, 4, 0, 1],  // IPv4 sent as mapped IPv6
        ] as [[UInt8]])
    func openWithAMalformedOriginIsRejected(bytes: [UInt8]) {
        #expect(throws: FrameError.self) { try decode(bytes) }
    }

    @Test(
        arguments: [
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 3, 3, 0x61, 0x20, 0x62, 0, 80],  // a name with a space
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 3, 7] + Array("1.2.3.4".utf8) + [0, 80],  // an address sent as a name
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 3, 0, 0, 80],  // an empty name
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 2, 1, 2, 3, 4, 0, 80],  // address type 2
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 1, 10, 1, 2, 3, 0],  // port cut short
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 9],  // a byte after the default target
        ] as [[UInt8]])
    func openWithAMalformedTargetIsRejected(bytes: [UInt8]) {
        #expect(throws: FrameError.self) { try decode(bytes) }
    }

    @Test func sessionOfAnUnknownModeOrAShortProofIsMalformed() {
        #expect(throws: FrameError.self) { try decode([19, 0, 0, 0, 0, 2]) }
        #expect(throws: FrameError.self) { try decode([19, 0, 0, 0, 0, 1] + Array(repeating: 0, count: 16 + 31 + 8)) }
        #expect(throws: FrameError.self) { try decode([19, 0, 0, 0, 0, 0, 0]) }
    }

    @Test(arguments: [0, 21, 200, 255] as [UInt8])
    func unknownKindIsRejected(kind: UInt8) {
        #expect(throws: FrameError.unknownKind(kind)) { try decode([kind, 0, 0, 0, 1]) }
    }

    @Test func paddingLongerThanLimitIsRejected() {
        let bytes: [UInt8] = [13, 0, 0, 0, 0] + [UInt8](repeating: 0, count: Limits.maxPadding + 1)
        #expect(throws: FrameError.self) { try decode(bytes) }
    }

    @Test func emptyDataIsRejected() {
        #expect(throws: FrameError.self) { try decode([3, 0, 0, 0, 1]) }
    }

    @Test func dataLongerThanLimitIsRejected() {
        let bytes = [3, 0, 0, 0, 1] + [UInt8](repeating: 0, count: Limits.maxDataPayload + 1)
        #expect(throws: FrameError.self) { try decode(bytes) }
    }

    @Test(
        arguments: [
            [1, 0, 0, 0, 1, 0, 0, 1],  // OPEN with 3-byte window
            [11, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],  // LISTEN_RESULT without its port
            [2, 0, 0, 0, 1, 0, 0, 0, 1, 0],  // OPEN_OK with 5-byte window
            [4, 0, 0, 0, 1, 0],  // FIN with a payload
            [5, 0, 0, 0, 1],  // RESET without reason
            [6, 0, 0, 0, 1, 1],  // WINDOW with 1-byte increment
            [7, 0, 0, 0, 0, 1, 2, 3],  // PING with 3 bytes
            [9, 0, 0, 0, 0],  // GOAWAY without reason
        ] as [[UInt8]])
    func payloadOfWrongSizeIsRejected(bytes: [UInt8]) {
        #expect(throws: FrameError.self) { try decode(bytes) }
    }

    @Test func streamFrameForStreamZeroIsRejected() {
        #expect(throws: FrameError.malformed(.data, "stream id 0")) { try decode([3, 0, 0, 0, 0, 1]) }
    }

    @Test func linkFrameForAStreamIsRejected() {
        #expect(throws: FrameError.malformed(.ping, "stream id 1, expected 0")) {
            try decode([7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])
        }
    }

    @Test func unknownResetReasonReadsAsAborted() throws {
        #expect(try decode([5, 0, 0, 0, 9, 200]) == .reset(9, .aborted))
    }
}
