import Foundation
import Testing

@testable import Bench
@testable import Mux

// Serialized: these loads saturate the CPU on purpose, and one at a time they disturb the timing tests of other
// suites far less.
@Suite(.serialized) struct LatencyRelayTests {
    let loopback = Endpoint(host: "127.0.0.1", port: 0)

    private func relay(to target: EchoTarget, shape: PathShape) throws -> LatencyRelay {
        let relay = try LatencyRelay(listeningOn: loopback, upstream: target.endpoint, shape: shape)
        try relay.start()
        return relay
    }

    /// Seconds one round trip of `bytes` bytes through `entry` takes.
    private func roundTrip(bytes: Int, through entry: Endpoint) throws -> Double {
        let connection = try LoadConnection.open(to: entry)
        defer { connection.close() }
        let started = ContinuousClock.now
        try connection.socket.sendAll([UInt8](repeating: 9, count: bytes))
        var echo = [UInt8](repeating: 0, count: bytes)
        let complete = echo.withUnsafeMutableBytes { connection.receiveExactly($0) }
        #expect(complete)
        #expect(echo == [UInt8](repeating: 9, count: bytes))
        return started.duration(to: .now).seconds
    }

    @Test func roundTripThroughTheRelayTakesTheConfiguredTime() throws {
        let target = try EchoTarget(listeningOn: loopback)
        try target.start()
        defer { target.stop() }
        let relay = try relay(to: target, shape: PathShape(roundTripSeconds: 0.1, bytesPerSecond: nil))
        defer { relay.stop() }
        let seconds = try roundTrip(bytes: 100, through: relay.endpoint)
        #expect(seconds >= 0.1 && seconds < 0.3, "round trip took \(seconds) s")
    }

    @Test func bandwidthCapPacesBulkData() throws {
        let target = try EchoTarget(listeningOn: loopback)
        try target.start()
        defer { target.stop() }
        // 2 MB each way at 10 MB/s: at least 0.2 s of serialization, on top of a 2 ms round trip.
        let relay = try relay(to: target, shape: PathShape(roundTripSeconds: 0.002, bytesPerSecond: 10e6))
        defer { relay.stop() }
        let seconds = try roundTrip(bytes: 2_000_000, through: relay.endpoint)
        #expect(seconds >= 0.2 && seconds < 1.5, "2 MB took \(seconds) s")
    }
}

@Suite(.serialized) struct LoadTests {
    let loopback = Endpoint(host: "127.0.0.1", port: 0)

    @Test func bulkEchoThroughAnEchoServerIsVerified() throws {
        let target = try EchoTarget(listeningOn: loopback)
        try target.start()
        defer { target.stop() }
        let report = try BulkLoad.run(entry: target.endpoint, streams: 3, seconds: 0.2, pattern: TestPattern())
        #expect(report.verified)
        #expect(report.failedStreams == 0)
        #expect(report.bytes > 0 && report.megabytesPerSecond > 0)
    }

    @Test func bulkEchoFromAServerThatAltersBytesFailsVerification() throws {
        // Echoes everything with each byte incremented: the byte counts match, the bytes do not.
        let listener = try Socket.listen(on: loopback.resolve(passive: true))
        let endpoint = listener.localEndpoint
        defer { listener.shutdown(.both) }
        try startThread(named: "altering-echo") {
            guard let client = try? listener.accept() else { return }
            defer { client.close() }
            var buffer = [UInt8](repeating: 0, count: 4096)
            while let n = try? buffer.withUnsafeMutableBytes({ try client.receive(into: $0) }), n > 0 {
                let altered = buffer[..<n].map { $0 &+ 1 }
                guard (try? client.sendAll(altered)) != nil else { return }
            }
        }
        let report = try BulkLoad.run(entry: endpoint, streams: 1, seconds: 0.1, pattern: TestPattern())
        #expect(!report.verified)
        #expect(report.firstFailure?.contains("wrong bytes") == true)
    }

    @Test func requestLoadCountsVerifiedRoundTrips() throws {
        let target = try EchoTarget(listeningOn: loopback)
        try target.start()
        defer { target.stop() }
        let report = try RequestLoad.run(entry: target.endpoint, streams: 2, seconds: 0.2, messageSize: 64)
        #expect(report.failedStreams == 0)
        #expect(report.count > 10)
        #expect(report.p50Microseconds > 0 && report.p50Microseconds <= report.p99Microseconds)
    }

    @Test func connectLoadCompletesCleanClosesAndCountsRefusals() throws {
        let target = try EchoTarget(listeningOn: loopback)
        try target.start()
        let report = try ConnectLoad.run(entry: target.endpoint, streams: 2, seconds: 0.2, messageSize: 64)
        #expect(report.count > 10 && report.failures == 0)
        #expect(report.firstResponseP50Microseconds > 0)
        #expect(report.firstResponseP50Microseconds <= report.firstResponseP99Microseconds)
        target.stop()
        let refused = try ConnectLoad.run(entry: target.endpoint, streams: 1, seconds: 0.2, messageSize: 64)
        #expect(refused.count == 0 && refused.failures > 0)
    }

    @Test func interactiveLoadRunsRoundTripsBesideVerifiedBulkStreams() throws {
        let target = try EchoTarget(listeningOn: loopback)
        try target.start()
        defer { target.stop() }
        let report = try InteractiveLoad.run(
            entry: target.endpoint, bulkStreams: 2, seconds: 0.4, messageSize: 64, pattern: TestPattern())
        #expect(report.bulkStreams == 2)
        #expect(report.bulk.verified && report.bulk.bytes > 0)
        #expect(report.requests.failedStreams == 0 && report.requests.count > 10)
    }

    @Test func halfCloseCheckTellsIntactFromLost() throws {
        let target = try EchoTarget(listeningOn: loopback)
        try target.start()
        defer { target.stop() }
        #expect(try HalfCloseCheck.run(entry: target.endpoint, pattern: TestPattern()).intact)

        // A relay that ends the whole connection when the client half-closes, as some tunnels do.
        let listener = try Socket.listen(on: loopback.resolve(passive: true))
        let endpoint = listener.localEndpoint
        defer { listener.shutdown(.both) }
        try startThread(named: "closing-server") {
            guard let client = try? listener.accept() else { return }
            var buffer = [UInt8](repeating: 0, count: 4096)
            while let n = try? buffer.withUnsafeMutableBytes({ try client.receive(into: $0) }), n > 0 {}
            client.close()
        }
        let lost = try HalfCloseCheck.run(entry: endpoint, pattern: TestPattern())
        #expect(!lost.intact)
        #expect(lost.receivedBeforeEnd == 0)
    }

    @Test func percentileIsTheNearestRank() {
        let values = (1...100).map(Double.init)
        #expect(RequestLoad.percentile(0.5, of: values) == 50)
        #expect(RequestLoad.percentile(0.99, of: values) == 99)
        #expect(RequestLoad.percentile(0.99, of: []) == 0)
    }

    @Test func patternMismatchIsFoundAcrossTheBlockBoundary() {
        let pattern = TestPattern()
        let position = TestPattern.length - 10
        var bytes = (0..<20).map { pattern.bytes[(position + $0) % TestPattern.length] }
        #expect(bytes.withUnsafeBytes { pattern.matches($0, at: position) })
        bytes[15] ^= 1
        #expect(!bytes.withUnsafeBytes { pattern.matches($0, at: position) })
    }
}
