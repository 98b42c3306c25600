import Crypto
import Foundation
import Logging
import Testing

@testable import Mux

/// Logs nothing, since the tests assert on behaviour, not on log lines; set TCPTUNNEL_TEST_LOG=debug to see
/// the agents' logs while investigating a failure.
let quietLogger: Logger = {
    guard let level = ProcessInfo.processInfo.environment["TCPTUNNEL_TEST_LOG"].flatMap(Logger.Level.init(rawValue:))
    else {
        return Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    }
    var logger = Logger(label: "test") { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = level
    return logger
}()

let loopback = Endpoint(host: "127.0.0.1", port: 0)

/// Settings with short timeouts, so failure paths finish within a test's time.
func testSettings() -> TunnelSettings {
    var settings = TunnelSettings()
    settings.handshakeTimeout = 0.5
    settings.connectTimeout = 2
    settings.linkWaitTimeout = 5
    settings.socksHandshakeTimeout = 0.5
    settings.drainTimeout = 0.5
    return settings
}

func makeKey() throws -> PreSharedKey {
    try PreSharedKey(base64: PreSharedKey.generateBase64(), source: "test key")
}

/// A target server on 127.0.0.1 (or `address`) that runs `behaviour` on a thread of its own for each connection, then
/// closes the connection.
final class TestTarget: Sendable {
    let endpoint: Endpoint
    private let listener: Listener

    init(on address: Endpoint = loopback, _ behaviour: @escaping @Sendable (Socket) -> Void) throws {
        listener = try Listener(endpoint: address)
        endpoint = listener.endpoint
        try listener.start(logger: quietLogger) { socket in
            do {
                try startThread(named: "target") {
                    behaviour(socket)
                    socket.close()
                }
            } catch {
                socket.close()  // the test that needed this connection fails on its own
            }
        }
    }

    func stop() {
        listener.stop()
    }

    /// Takes whatever its client sends until end of stream, answers nothing, and holds the connection 5 s more:
    /// a target that accepted but never answers.
    static func silent() throws -> TestTarget {
        try TestTarget { socket in
            _ = receive(socket, within: 10)
            Thread.sleep(forTimeInterval: 5)
        }
    }

    /// Optionally sends a banner first, then echoes every byte, and half-closes after its client's FIN, like a
    /// well-behaved request/response server.
    static func echo(banner: [UInt8] = [], on address: Endpoint = loopback) throws -> TestTarget {
        try TestTarget(on: address) { socket in
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            do {
                if !banner.isEmpty { try socket.sendAll(banner) }
                while true {
                    let count = try buffer.withUnsafeMutableBytes { try socket.receive(into: $0) }
                    if count == 0 { break }
                    try buffer.withUnsafeBytes { try socket.sendAll(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
                }
                socket.shutdown(.write)
            } catch {
                return
            }
        }
    }
}

/// A remote agent in front of a target, and a local agent linked to it (the link is up when `init` returns),
/// all on 127.0.0.1.
final class Tunnel {
    let remote: RemoteAgent
    let local: LocalAgent

    init(target: Endpoint, key: PreSharedKey? = nil, settings: TunnelSettings = testSettings()) throws {
        let key = try key ?? makeKey()
        remote = try RemoteAgent(listen: loopback, target: target, keys: [key], settings: settings, logger: quietLogger)
        try remote.start()
        local = try LocalAgent(
            listen: loopback, remote: remote.listeningEndpoint, key: key, settings: settings, logger: quietLogger)
        try local.start()
        // Clients are carried only once the link is up: a late link must fail here, not pass for lost data.
        #expect(eventually(within: 10) { local.isLinkUp }, "the local agent did not link within 10 s")
    }

    var clientEndpoint: Endpoint { local.listeningEndpoints[0] }

    func stop() {
        local.stop()
        remote.stop()
    }
}

/// Polls `condition` every 10 ms for up to `seconds`.
func eventually(within seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return condition()
}

func connect(to endpoint: Endpoint) throws -> Socket {
    try Socket.connect(to: try endpoint.resolve(), timeout: 2)
}

/// Whether a client connecting to `endpoint` is refused the way the agents refuse a client: reset (RST), while
/// connecting or within `seconds`, before any byte. End of stream without a reset, a byte, or silence for
/// `seconds` is not that refusal, so an agent that hangs or closes politely fails the check.
func isReset(at endpoint: Endpoint, within seconds: Double = 5) -> Bool {
    let socket: Socket
    do {
        socket = try connect(to: endpoint)
    } catch {
        return (error as? SocketError)?.code == ECONNRESET  // the RST beat connect(2)'s completion
    }
    defer { socket.close() }
    socket.setReceiveTimeout(seconds: seconds)
    var byte = [UInt8](repeating: 0, count: 1)
    let received = byte.withUnsafeMutableBytes { raw in
        Result { () throws(SocketError) in try socket.receive(into: raw) }
    }
    if case .failure(let error) = received { return error.code == ECONNRESET }
    return false
}

/// How the incoming side of a connection ended, as a client sees it.
enum Ending: Hashable, CustomStringConvertible {
    /// The peer closed its side (FIN).
    case endOfStream
    /// The peer reset the connection (RST).
    case reset
    /// The time allowed passed with the connection still open: the peer neither closed nor sent enough.
    case timedOut
    /// As many bytes as were asked for arrived; the connection may go on.
    case limitReached
    /// recv(2) failed with this errno.
    case failed(Int32)

    var description: String {
        switch self {
        case .endOfStream: "end of stream"
        case .reset: "reset"
        case .timedOut: "still open at the deadline"
        case .limitReached: "limit reached"
        case .failed(let code): "recv failed (errno \(code))"
        }
    }
}

/// What a read of a connection got: the bytes, how it ended, and after how long.
struct Received: CustomStringConvertible {
    let bytes: [UInt8]
    let ending: Ending
    let seconds: Double

    var description: String { "\(bytes.count) B, then \(ending) after \(String(format: "%.2f", seconds)) s" }
}

/// Reads `socket` until the peer ends or resets it, `limit` bytes have arrived, or `seconds` pass (a deadline for
/// the whole read, however the peer trickles), and says which.
func receive(_ socket: Socket, limit: Int = .max, within seconds: Double = 30) -> Received {
    let started = ContinuousClock.now
    let deadline = started + .seconds(seconds)
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    func result(_ ending: Ending) -> Received {
        Received(bytes: bytes, ending: ending, seconds: (ContinuousClock.now - started).inSeconds)
    }
    while bytes.count < limit {
        let remaining = deadline - .now
        guard remaining > .zero else { return result(.timedOut) }
        socket.setReceiveTimeout(seconds: remaining.inSeconds)
        let wanted = min(buffer.count, limit - bytes.count)
        let received = buffer.withUnsafeMutableBytes { raw in
            Result { () throws(SocketError) in
                try socket.receive(into: UnsafeMutableRawBufferPointer(rebasing: raw[..<wanted]))
            }
        }
        switch received {
        case .success(0): return result(.endOfStream)
        case .success(let count): bytes += buffer[..<count]
        case .failure(let error) where error.isTimeout: return result(.timedOut)
        case .failure(let error) where error.code == ECONNRESET: return result(.reset)
        case .failure(let error): return result(.failed(error.code))
        }
    }
    return result(.limitReached)
}

/// Reads `socket` to its end, which must come as one of `endings` (by default the peer's FIN) within `seconds`;
/// records an issue at the caller otherwise. Returns the bytes. Call it on the test's own thread.
@discardableResult
func readToEnd(
    _ socket: Socket, within seconds: Double = 30, expecting endings: Set<Ending> = [.endOfStream],
    sourceLocation: SourceLocation = #_sourceLocation
) -> [UInt8] {
    let received = receive(socket, within: seconds)
    #expect(endings.contains(received.ending), "read \(received)", sourceLocation: sourceLocation)
    return received.bytes
}

/// Reads exactly `count` bytes from `socket` within `seconds`; records an issue at the caller if the connection
/// ended, or the time passed, first. Call it on the test's own thread.
func read(
    _ socket: Socket, exactly count: Int, within seconds: Double = 10, sourceLocation: SourceLocation = #_sourceLocation
) -> [UInt8] {
    let received = receive(socket, limit: count, within: seconds)
    #expect(received.ending == .limitReached, "read \(received)", sourceLocation: sourceLocation)
    return received.bytes
}

/// Sends `data` and half-closes on a helper thread while this thread reads the reply to its end (or `seconds`):
/// the way a client of a request/response protocol uses TCP. The reply says how the connection ended, so a
/// caller can tell a reset (a link that was late, say) from lost bytes.
func exchange(_ data: [UInt8], through endpoint: Endpoint, within seconds: Double = 60) throws -> Received {
    let socket = try connect(to: endpoint)
    defer { socket.close() }
    let sent = Completion()
    try startThread(named: "test-sender") {
        try? socket.sendAll(data)
        socket.shutdown(.write)
        sent.complete()
    }
    let reply = receive(socket, within: seconds)
    sent.wait(seconds: 30)
    return reply
}

/// Whether `reply` is `data` echoed whole and then ended with the peer's FIN; otherwise records an issue at the
/// caller saying what came instead.
func expectEchoed(_ reply: Received, _ data: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(reply.ending == .endOfStream, "reply: \(reply)", sourceLocation: sourceLocation)
    expectIdentical(reply.bytes, data, sourceLocation: sourceLocation)
}

/// Deterministic test bytes: stream `seed`'s pattern, cheap to make even in debug builds.
func pattern(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        var index = 0
        while index < count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            withUnsafeBytes(of: state) { word in
                for byte in word where index < count {
                    buffer[index] = byte
                    index += 1
                }
            }
        }
        initialized = count
    }
}

/// Byte-exact comparison via memcmp: Array's `==` is slow on megabytes in debug builds.
func identical(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    guard !a.isEmpty else { return true }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, a.count) == 0 } }
}

/// Records one short issue (the sizes and the first differing byte) when `received` is not `expected`, instead
/// of the megabytes `#expect` would print.
func expectIdentical(
    _ received: [UInt8], _ expected: [UInt8], sourceLocation: SourceLocation = #_sourceLocation
) {
    guard !identical(received, expected) else { return }
    let firstDifference =
        zip(received, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        ?? min(received.count, expected.count)
    Issue.record(
        "received \(received.count) B, expected \(expected.count) B; first difference at byte \(firstDifference)",
        sourceLocation: sourceLocation)
}

/// Runs `count` bodies on threads of their own and waits up to `seconds` for all of them.
func runConcurrently(_ count: Int, within seconds: Double, _ body: @escaping @Sendable (Int) -> Void) throws -> Bool {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        try startThread(named: "test-client-\(index)") {
            body(index)
            group.leave()
        }
    }
    return group.wait(timeout: .now() + seconds) == .success
}

/// Sends `data` `rounds` times and half-closes, while this thread reads the echo and compares it as it arrives
/// (nothing is stored). Returns whether every byte came back, in order, before end of stream.
func echoesExactly(_ data: [UInt8], rounds: Int = 1, through endpoint: Endpoint) throws -> Bool {
    let socket = try connect(to: endpoint)
    defer { socket.close() }
    return try echoesExactly(data, rounds: rounds, over: socket)
}

/// `echoesExactly(_:rounds:through:)` over a socket already connected (and, for SOCKS, negotiated).
func echoesExactly(_ data: [UInt8], rounds: Int = 1, over socket: Socket) throws -> Bool {
    let sent = Completion()
    try startThread(named: "test-sender") {
        for _ in 0..<rounds { if (try? socket.sendAll(data)) == nil { break } }
        socket.shutdown(.write)
        sent.complete()
    }
    defer { sent.wait(seconds: 60) }
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    var position = 0
    let total = data.count * rounds
    while true {
        guard let count = try? buffer.withUnsafeMutableBytes({ try socket.receive(into: $0) }), count > 0 else {
            return position == total
        }
        guard position + count <= total, matches(buffer[..<count], data, at: position % data.count) else {
            return false
        }
        position += count
    }
}

/// Whether `data`, sent over `socket` from a thread of its own, comes back whole within `seconds`; the connection
/// stays open, for a stream that must go on.
func echoesExactly(_ data: [UInt8], keepingOpen socket: Socket, within seconds: Double = 30) throws -> Bool {
    try startThread(named: "test-sender") { _ = try? socket.sendAll(data) }
    let echoed = receive(socket, limit: data.count, within: seconds)
    return echoed.ending == .limitReached && echoed.bytes == data
}

/// Whether `chunk` equals `data` read cyclically from `offset`, compared with memcmp a segment at a time.
private func matches(_ chunk: ArraySlice<UInt8>, _ data: [UInt8], at offset: Int) -> Bool {
    var checked = 0
    var offset = offset
    return chunk.withUnsafeBytes { received in
        data.withUnsafeBytes { expected in
            while checked < received.count {
                let length = min(received.count - checked, expected.count - offset)
                guard memcmp(received.baseAddress! + checked, expected.baseAddress! + offset, length) == 0 else {
                    return false
                }
                checked += length
                offset = (offset + length) % expected.count
            }
            return true
        }
    }
}

/// Keeps `socket` busy both ways (sending `chunk` over and over, reading whatever comes back) until the
/// connection fails or `seconds` pass; returns when both directions have stopped.
func keepBusy(_ socket: Socket, chunk: [UInt8], seconds: Double) throws {
    let deadline = Date(timeIntervalSinceNow: seconds)
    let sent = Completion()
    try startThread(named: "busy-sender") {
        while Date() < deadline, (try? socket.sendAll(chunk)) != nil {}
        sent.complete()
    }
    socket.setReceiveTimeout(seconds: 1)
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while Date() < deadline {
        do {
            if try buffer.withUnsafeMutableBytes({ try socket.receive(into: $0) }) == 0 { break }
        } catch {
            if (error as? SocketError)?.isTimeout != true { break }
        }
    }
    socket.shutdown(.both)
    sent.wait(seconds: 10)
}
