import Glibc
import Testing

@testable import Mux

@Suite struct TLSRecordChannelTests {
    /// A record TLS 1.3 would not send once its handshake is done, each of which must fail the receive.
    enum BadRecord: CaseIterable, Sendable {
        case changeCipherSpecWhereNoneIsExpected, changeCipherSpecAfterApplicationData, alert, versionTLS10
        case emptyApplicationData, lengthPastTheMaximum

        var bytes: [UInt8] {
            switch self {
            case .changeCipherSpecWhereNoneIsExpected:
                TLSRecord.changeCipherSpec + TLSRecord.header(.applicationData, length: 3) + [1, 2, 3]
            case .changeCipherSpecAfterApplicationData:
                TLSRecord.header(.applicationData, length: 3) + [1, 2, 3] + TLSRecord.changeCipherSpec
            case .alert: [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]
            case .versionTLS10: [0x17, 0x03, 0x01, 0x00, 0x01, 0xAA]
            case .emptyApplicationData: [0x17, 0x03, 0x03, 0x00, 0x00]
            case .lengthPastTheMaximum: [0x17, 0x03, 0x03, 0x41, 0x01]  // 16,641
            }
        }
    }

    /// A channel on one end of a socketpair and the raw peer at the other, both bounded by 5 s timeouts.
    private func makeChannel(prelude: [UInt8] = [], skippingPeerFinished: Bool = false) throws
        -> (channel: TLSRecordChannel, peer: Socket)
    {
        let (end, peer) = try connectedPair()
        let channel = TLSRecordChannel(socket: end, prelude: prelude, skippingPeerFinished: skippingPeerFinished)
        channel.setTimeouts(receive: 5, send: 5)
        peer.setTimeouts(receive: 5, send: 5)
        return (channel, peer)
    }

    private func seededBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        return randomBytes(count, using: &generator)
    }

    /// Everything `socket` receives until end of stream.
    private func readToEnd(_ socket: Socket) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try socket.receive(into: $0) }
            if count == 0 { return bytes }
            bytes += buffer[..<count]
        }
    }

    /// What the channel delivers, `bufferSize` bytes at most per receive, until end of stream or an error.
    private func receiveToEnd(_ channel: TLSRecordChannel, bufferSize: Int = 65_536) -> Result<[UInt8], SocketError> {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: bufferSize)
        while true {
            let received = buffer.withUnsafeMutableBytes { raw in
                Result { () throws(SocketError) in try channel.receive(into: raw) }
            }
            switch received {
            case .success(0): return .success(bytes)
            case .success(let count): bytes += buffer[..<count]
            case .failure(let error): return .failure(error)
            }
        }
    }

    /// Sends `bytes` through a new channel on a thread of its own, then ends its direction; returns what the raw
    /// peer read.
    private func sendThroughChannel(_ bytes: [UInt8]) throws -> [UInt8] {
        let (channel, peer) = try makeChannel()
        defer {
            channel.close()
            peer.close()
        }
        let sent = Completion()
        try startThread(named: "test-sender") {
            try? channel.sendAll(bytes)
            channel.shutdown(.write)
            sent.complete()
        }
        let raw = try readToEnd(peer)
        #expect(sent.wait(seconds: 5))
        return raw
    }

    /// The records in `raw`, each as its header and payload; `nil` if `raw` does not end at a record's end.
    private func records(in raw: [UInt8]) -> [(header: TLSRecord.Header, payload: [UInt8])]? {
        var records: [(header: TLSRecord.Header, payload: [UInt8])] = []
        var offset = 0
        while offset < raw.count {
            guard raw.count - offset >= TLSRecord.headerSize else { return nil }
            let header = TLSRecord.Header(raw[offset...])
            let end = offset + TLSRecord.headerSize + header.length
            guard end <= raw.count else { return nil }
            records.append((header, Array(raw[offset + TLSRecord.headerSize..<end])))
            offset = end
        }
        return records
    }

    // MARK: Sending

    @Test func sentBytesArriveAsApplicationDataRecordsOfAtMostTheWrittenMaximum() throws {
        let raw = try sendThroughChannel(seededBytes(100_000, seed: 1))
        let parsed = try #require(records(in: raw))
        #expect(
            parsed.allSatisfy {
                $0.header.isApplicationData && $0.header.length <= TLSRecord.maximumWrittenLength
            })
    }

    @Test func recordPayloadsConcatenateToTheSentBytes() throws {
        let bytes = seededBytes(100_000, seed: 2)
        let parsed = try #require(records(in: try sendThroughChannel(bytes)))
        #expect(parsed.flatMap(\.payload) == bytes)
    }

    @Test func preludeIsWrittenBeforeTheFirstSentByte() throws {
        let prelude = seededBytes(40, seed: 3)
        let (channel, peer) = try makeChannel(prelude: prelude)
        defer {
            channel.close()
            peer.close()
        }
        try channel.sendAll([0xAA, 0xBB])
        channel.shutdown(.write)
        #expect(try readToEnd(peer) == prelude + TLSRecord.header(.applicationData, length: 2) + [0xAA, 0xBB])
    }

    // MARK: Receiving

    @Test func recordsArrivingOneByteAtATimeAreDeliveredWithoutHeaders() throws {
        let (channel, peer) = try makeChannel()
        defer {
            channel.close()
            peer.close()
        }
        let payloads: [[UInt8]] = [[1, 2, 3], [4], [5, 6, 7, 8, 9, 10, 11]]
        for byte in payloads.flatMap({ TLSRecord.header(.applicationData, length: $0.count) + $0 }) {
            try peer.sendAll([byte])
        }
        peer.shutdown(.write)
        // A one-byte buffer: every receive takes one byte, so each header is cut at every possible point.
        #expect(receiveToEnd(channel, bufferSize: 1) == .success(payloads.flatMap { $0 }))
    }

    @Test func recordsReceivedTogetherAreDeliveredAsTheirPayloads() throws {
        let (channel, peer) = try makeChannel()
        defer {
            channel.close()
            peer.close()
        }
        let payloads = [seededBytes(16_401, seed: 4), seededBytes(1, seed: 5), seededBytes(9_000, seed: 6)]
        try peer.sendAll(payloads.flatMap { TLSRecord.header(.applicationData, length: $0.count) + $0 })
        peer.shutdown(.write)
        #expect(receiveToEnd(channel) == .success(payloads.flatMap { $0 }))
    }

    @Test func peersChangeCipherSpecAndFinishedAreDroppedWhenSkipping() throws {
        let (channel, peer) = try makeChannel(skippingPeerFinished: true)
        defer {
            channel.close()
            peer.close()
        }
        let finished = seededBytes(53, seed: 7)
        let payload: [UInt8] = [10, 20, 30]
        try peer.sendAll(
            TLSRecord.changeCipherSpec + TLSRecord.header(.applicationData, length: finished.count) + finished
                + TLSRecord.header(.applicationData, length: payload.count) + payload)
        peer.shutdown(.write)
        #expect(receiveToEnd(channel) == .success(payload))
    }

    @Test(arguments: BadRecord.allCases)
    func recordTLS13WouldNotSendFailsTheReceive(_ record: BadRecord) throws {
        let (channel, peer) = try makeChannel()
        defer {
            channel.close()
            peer.close()
        }
        try peer.sendAll(record.bytes)
        peer.shutdown(.write)
        #expect(receiveToEnd(channel) == .failure(SocketError(call: "TLS record", code: EPROTO)))
    }

    @Test(arguments: OpeningMistake.allCases)
    func anOpeningThatIsNotOneChangeCipherSpecThenTheFinishedFailsTheReceive(_ mistake: OpeningMistake) throws {
        let (channel, peer) = try makeChannel(skippingPeerFinished: true)
        defer {
            channel.close()
            peer.close()
        }
        try peer.sendAll(mistake.bytes)
        peer.shutdown(.write)
        #expect(receiveToEnd(channel) == .failure(SocketError(call: "TLS record", code: EPROTO)))
    }

    /// Openings a local agent never sends: two ChangeCipherSpecs, or one whose byte is not 1.
    enum OpeningMistake: CaseIterable, Sendable {
        case twoChangeCipherSpecs, changeCipherSpecOfAnotherByte

        var bytes: [UInt8] {
            switch self {
            case .twoChangeCipherSpecs: TLSRecord.changeCipherSpec + TLSRecord.changeCipherSpec
            case .changeCipherSpecOfAnotherByte: [20, 0x03, 0x03, 0x00, 0x01, 0x02]
            }
        }
    }

    @Test func endOfStreamReturnsZero() throws {
        let (channel, peer) = try makeChannel()
        defer {
            channel.close()
            peer.close()
        }
        peer.shutdown(.write)
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(try buffer.withUnsafeMutableBytes { try channel.receive(into: $0) } == 0)
    }
}
