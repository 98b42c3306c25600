import Foundation
import Testing

@testable import Crypto
@testable import Mux

/// What a passive observer and a replaying attacker get from links between real agents on 127.0.0.1.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ObserverTests {
    @Test func firstBytesOfFreshLinksArePrintableTextWithNoFixedCharacterOrSizeAndNoTimestamp() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let key = try makeKey()
        // Room for slow runs (sanitizers): an attempt that times out would only add an unanswered connection.
        var settings = testSettings()
        settings.handshakeTimeout = 5
        let remote = try RemoteAgent(
            listen: loopback, target: target.endpoint, keys: [key], settings: settings, logger: quietLogger)
        try remote.start()
        defer { remote.stop() }
        let relay = try RecordingRelay(upstream: remote.listeningEndpoint)
        defer { relay.stop() }
        let links = 256
        for _ in 0..<links {
            let local = try LocalAgent(
                listen: loopback, remote: relay.endpoint, key: key, settings: settings, logger: quietLogger)
            try local.start()
            #expect(eventually(within: 10) { local.isLinkUp })
            local.stop()
        }
        // The connections that carried a link: both hellos seen, each at least 64 bytes.
        let records = relay.records.filter { $0[.toRemote]?.prefix.count == 64 && $0[.toLocal]?.prefix.count == 64 }
        #expect(records.count == links)
        for direction in [Relay.Direction.toRemote, .toLocal] {
            let prefixes = records.compactMap { $0[direction]?.prefix }
            expectUniformText(prefixes, direction: direction)
            let sizes = Set(records.compactMap { $0[direction]?.firstSegment })
            #expect(sizes.count > 100, "first segments \(direction) take only \(sizes.count) sizes")
            report("first segments \(direction): \(sizes.count) sizes, \(sizes.min()!)–\(sizes.max()!) bytes")
            // The timestamp travels sealed: not in the text, nor in the bytes it stands for.
            let headers = records.compactMap { $0[direction]?.bytes }.map { Array($0.prefix(96)) }
            #expect(headers.allSatisfy { !containsUnixTime($0) && !containsUnixTime(HelloText.decode($0[...]) ?? []) })
        }
        // The local agent's first frames after its hello (the round-trip PING) are padded, so they vary too.
        let openingSizes = Set(records.compactMap { $0[.toRemote]?.secondSegment })
        #expect(openingSizes.count > 100, "the first frames take only \(openingSizes.count) sizes")
        report("the local agent's first frames after its hello: \(openingSizes.count) sizes")
    }

    /// Each of the 64 byte positions, across links, a character of base64's alphabet drawn uniformly: each of the
    /// six bits of its value set in about half of them (within 6 standard deviations), and most of the 64
    /// characters seen at each position.
    private func expectUniformText(_ prefixes: [[UInt8]], direction: Relay.Direction) {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        let count = Double(prefixes.count)
        let tolerance = 6 * (count.squareRoot() / 2)
        var distinct: [Int] = []
        var setCounts: [Int] = []
        for position in 0..<64 {
            let characters = prefixes.map { $0[position] }
            let values = characters.compactMap { alphabet.firstIndex(of: $0) }
            #expect(values.count == characters.count, "byte \(position) \(direction) is not always base64 text")
            distinct.append(Set(values).count)
            #expect(Set(values).count > 56, "byte \(position) \(direction) takes \(Set(values).count) values")
            for bit in 0..<6 {
                let ones = values.filter { $0 >> bit & 1 == 1 }.count
                setCounts.append(ones)
                #expect(
                    abs(Double(ones) - count / 2) < tolerance,
                    "bit \(bit) of byte \(position) \(direction) set \(ones) times")
            }
        }
        report(
            "\(direction), \(prefixes.count) links: each of the first 64 bytes is one of \(distinct.min()!)–"
                + "\(distinct.max()!) base64 characters; each of their 384 value bits is set in \(setCounts.min()!)–"
                + "\(setCounts.max()!) links")
    }

    /// A measurement for the log of a test run.
    private func report(_ text: String) {
        FileHandle.standardError.write(Data("ObserverTests: \(text)\n".utf8))
    }

    /// Whether the Unix time of the last ten minutes appears big-endian, in seconds or milliseconds, as 8 bytes.
    private func containsUnixTime(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 8 else { return false }
        let now = UnixClock.nowMillis()
        // The slowly changing high bytes: 6 of the seconds, 5 of the milliseconds.
        let stamps = Set(
            stride(from: now - 600_000, through: now, by: 1000).flatMap { millis in
                [(millis / 1000) >> 16, millis >> 24]
            })
        let windows: [UInt64] = (0...(bytes.count - 8)).flatMap { offset -> [UInt64] in
            let value = bytes[offset..<offset + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return [value >> 16, value >> 24]
        }
        return windows.contains { stamps.contains($0) }
    }

    @Test func helloRecordedBeforeARestartGetsNoByteFromTheRestartedAgentNorFromALaterOne() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let key = try makeKey()
        var settings = testSettings()
        settings.handshakeTimeout = 1
        var remote = try RemoteAgent(
            listen: loopback, target: target.endpoint, keys: [key], settings: settings, logger: quietLogger)
        try remote.start()
        let relay = try RecordingRelay(upstream: remote.listeningEndpoint)
        defer { relay.stop() }
        var localSettings = testSettings()
        localSettings.handshakeTimeout = 5
        let local = try LocalAgent(
            listen: loopback, remote: relay.endpoint, key: key, settings: localSettings, logger: quietLogger)
        try local.start()
        #expect(eventually(within: 10) { local.isLinkUp })
        local.stop()
        // The hello of the connection the remote agent answered.
        let recorded = try #require(relay.records.first { $0[.toLocal] != nil }?[.toRemote]?.bytes)
        let port = remote.listeningEndpoint.port

        #expect(replayGetsNoByte(recorded, to: remote.listeningEndpoint), "the agent that answered it refuses it")
        #expect(remote.rejectedCount(.replayed) == 1)
        remote.stop()
        // Restarted on the same port, and a second agent with the same key started later on another port.
        remote = try RemoteAgent(
            listen: Endpoint(host: "127.0.0.1", port: port), target: target.endpoint, keys: [key], settings: settings,
            logger: quietLogger)
        try remote.start()
        defer { remote.stop() }
        let second = try RemoteAgent(
            listen: loopback, target: target.endpoint, keys: [key], settings: settings, logger: quietLogger)
        try second.start()
        defer { second.stop() }
        for agent in [remote, second] {
            #expect(replayGetsNoByte(recorded, to: agent.listeningEndpoint))
            #expect(agent.rejectedCount(.staleClock) == 1, "refused as stamped before the agent started")
            #expect(agent.linkCount == 0)
        }
    }

    /// Sends a recorded hello and reads until the agent closes: no byte may come back.
    private func replayGetsNoByte(_ hello: [UInt8], to endpoint: Endpoint) -> Bool {
        guard let socket = try? connect(to: endpoint) else { return false }
        defer { socket.close() }
        guard (try? socket.sendAll(hello)) != nil else { return false }
        let answer = receive(socket, within: 5)
        return answer.bytes.isEmpty && [.endOfStream, .reset].contains(answer.ending)
    }
}

/// A relay in front of `upstream` that records, for each connection and each direction, the sizes of the first
/// two segments read and the first bytes: what a passive observer on the path sees.
final class RecordingRelay: Sendable {
    /// What was seen in one direction of one connection.
    struct Record: Sendable {
        var firstSegment = 0
        var secondSegment: Int?
        /// The first 64 bytes.
        var prefix: [UInt8] = []
        /// The first segment: a whole hello, for replaying.
        var bytes: [UInt8] = []
    }

    private let relay: Relay
    private let recorded = Locked<[Int: [Relay.Direction: Record]]>([:])
    var endpoint: Endpoint { relay.endpoint }

    init(upstream: Endpoint) throws {
        let recorded = self.recorded
        relay = try Relay(upstream: upstream) { connection, direction, chunk in
            recorded.withLock { records in
                guard var record = records[connection, default: [:]][direction] else {
                    records[connection, default: [:]][direction] = Record(
                        firstSegment: chunk.count, prefix: Array(chunk.prefix(64)), bytes: chunk)
                    return
                }
                if record.secondSegment == nil { record.secondSegment = chunk.count }
                record.prefix += chunk.prefix(64 - record.prefix.count)
                records[connection]![direction] = record
            }
        }
    }

    /// One entry per connection so far, in the order accepted.
    var records: [[Relay.Direction: Record]] { recorded.withLock { $0.sorted { $0.key < $1.key }.map(\.value) } }

    func stop() {
        relay.stop()
    }
}
