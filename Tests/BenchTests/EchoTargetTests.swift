import Foundation
import Testing

@testable import Bench
@testable import Mux

/// The benchmark's target serves two loads on one port: responses to a connection that greets it, echo to any
/// other.
@Suite struct EchoTargetTests {
    private func withTarget(_ body: (Endpoint) throws -> Void) throws {
        let target = try EchoTarget(listeningOn: Endpoint(host: "127.0.0.1", port: 0))
        try target.start()
        defer { target.stop() }
        try body(target.endpoint)
    }

    /// Reads exactly `count` bytes, or fails the test.
    private func read(_ count: Int, from connection: LoadConnection) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try #require(bytes.withUnsafeMutableBytes { connection.receiveExactly($0) }, "the connection ended early")
        return bytes
    }

    @Test func aGreetedConnectionGetsEachResponseWhole() throws {
        try withTarget { entry in
            let connection = try LoadConnection.open(to: entry)
            defer { connection.close() }
            let pattern = TestPattern()
            // The greeting and the first request in one segment; then a large response, then a small one.
            let first = ResponseProtocol.request(size: 1 << 20 + 3, sequence: 1)
            try connection.socket.sendAll(ResponseProtocol.greeting + first)
            #expect(try read(ResponseProtocol.greeting.count, from: connection) == ResponseProtocol.greeting)
            let large = try read(1 << 20 + 3, from: connection)
            #expect(large.withUnsafeBytes { ResponseProtocol.isResponse($0, to: first, pattern: pattern) })
            let second = ResponseProtocol.request(size: 1024, sequence: 2)
            try connection.socket.sendAll(second)
            let small = try read(1024, from: connection)
            #expect(small.withUnsafeBytes { ResponseProtocol.isResponse($0, to: second, pattern: pattern) })
            #expect(!small.withUnsafeBytes { ResponseProtocol.isResponse($0, to: first, pattern: pattern) })
        }
    }

    @Test func aGreetingSplitAcrossSegmentsIsRecognised() throws {
        try withTarget { entry in
            let connection = try LoadConnection.open(to: entry)
            defer { connection.close() }
            connection.socket.setNoDelay()
            let greeting = ResponseProtocol.greeting
            try connection.socket.sendAll(Array(greeting[..<5]))
            #expect(try read(5, from: connection) == Array(greeting[..<5]), "a prefix is echoed at once")
            try connection.socket.sendAll(Array(greeting[5...]))
            #expect(try read(greeting.count - 5, from: connection) == Array(greeting[5...]))
            let request = ResponseProtocol.request(size: 100, sequence: 7)
            try connection.socket.sendAll(request)
            let response = try read(100, from: connection)
            #expect(response.withUnsafeBytes { ResponseProtocol.isResponse($0, to: request, pattern: TestPattern()) })
        }
    }

    /// The hold load's one-byte round trips send every byte value first, the greeting's first among them.
    @Test func aSingleByteLikeTheGreetingsFirstIsEchoedAtOnce() throws {
        try withTarget { entry in
            let connection = try LoadConnection.open(to: entry)
            defer { connection.close() }
            let first = [ResponseProtocol.greeting[0]]
            try connection.socket.sendAll(first)
            try #require(connection.waitUntilReadable(milliseconds: 2_000), "the byte was held back")
            #expect(try read(1, from: connection) == first)
        }
    }

    @Test func anOpeningThatOnlyBeginsLikeTheGreetingIsEchoed() throws {
        try withTarget { entry in
            let connection = try LoadConnection.open(to: entry)
            defer { connection.close() }
            let opening = Array(ResponseProtocol.greeting[..<9]) + Array("-not-the-greeting".utf8)
            try connection.socket.sendAll(opening)
            #expect(try read(opening.count, from: connection) == opening)
            connection.socket.shutdown(.write)
            #expect(connection.drainToEnd() == (0, true))
        }
    }
}
