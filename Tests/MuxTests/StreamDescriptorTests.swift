import Glibc
import Testing

@testable import Mux

/// One real socket, traced: every call on it is forwarded and recorded, so a test can tell how often it was
/// closed, what happened at that moment, and whether anything touched the descriptor afterwards (by then the
/// system may have given its number to another connection).
final class TracedChannel: ByteChannel, @unchecked Sendable {  // `trace` is a `Locked`; `socket` is immutable
    struct Trace {
        var closes = 0
        /// Calls made after the first `close()`.
        var usesAfterClose: [String] = []
        /// What `onClose` returned at the first close.
        var atClose: Int?
    }

    let trace = Locked(Trace())
    private let socket: Socket
    private let onClose: @Sendable () -> Int

    /// Traces `socket`; `onClose` is asked, as the first close happens, for a number the test checks later.
    init(_ socket: Socket, onClose: @escaping @Sendable () -> Int = { 0 }) {
        self.socket = socket
        self.onClose = onClose
    }

    private func use(_ call: String) {
        trace.withLock { if $0.closes > 0 { $0.usesAfterClose.append(call) } }
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        use("recv")
        return try socket.receive(into: buffer)
    }

    func awaitBytes() throws(SocketError) -> Bool {
        use("recv")
        return try socket.awaitBytes()
    }

    func sendAll(_ bytes: UnsafeRawBufferPointer) throws(SocketError) {
        use("send")
        try socket.sendAll(bytes)
    }

    func sendAvailable(_ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        use("send")
        return try socket.sendAvailable(bytes)
    }

    func setTimeouts(receive: Double, send: Double) {
        use("setsockopt")
        socket.setTimeouts(receive: receive, send: send)
    }

    func shutdown(_ direction: Socket.Direction) {
        use("shutdown")
        socket.shutdown(direction)
    }

    func setAbortOnClose() {
        use("setsockopt(SO_LINGER)")
        socket.setAbortOnClose()
    }

    func setNoDelay() {
        use("setsockopt(TCP_NODELAY)")
        socket.setNoDelay()
    }

    func close() {
        let isFirst = trace.withLock { trace in
            trace.closes += 1
            if trace.closes > 1 { trace.usesAfterClose.append("close") }
            return trace.closes == 1
        }
        guard isFirst else { return }
        let seen = onClose()
        trace.withLock { $0.atClose = seen }
        socket.close()
    }
}

/// A stream owns the descriptor it carries: it closes it exactly once, after the stream has left its link's
/// table, and touches it never again, whatever arrives for the stream afterwards.
@Suite(.timeLimit(.minutes(1)))
struct StreamDescriptorTests {
    /// A socketpair: the stream's end, traced, and the test's end.
    private func connection(onClose: @escaping @Sendable () -> Int) throws -> (TracedChannel, Socket) {
        var ends: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw SocketError(call: "socketpair", code: errno)
        }
        return (TracedChannel(Socket(fd: ends[0]), onClose: onClose), Socket(fd: ends[1]))
    }

    /// A stream the peer opened and this link accepted onto a traced connection, relaying on a thread of its
    /// own as the remote agent's would; it has exchanged FIN both ways and ended.
    private func endedStream(_ harness: LinkHarness) throws -> (Mux.Stream, TracedChannel) {
        try harness.send([.open(1, window: 65_536, target: .defaultTarget, origin: nil)])
        #expect(eventually { harness.delegate.opened.withLock { $0.count } == 1 })
        let stream = try #require(harness.delegate.opened.withLock { $0.first })
        let link = harness.link
        let (channel, other) = try connection { link.streamCount }
        #expect(stream.accept(channel))
        try startThread(named: "test-uplink") { stream.run() }
        #expect(harness.receive { $0 == .openOK(1, window: 1024 * 1024) } != nil)
        other.shutdown(.write)  // the target ends its side: the stream sends FIN
        #expect(harness.receive { $0 == .fin(1) } != nil)
        try harness.send([.fin(1)])
        #expect(eventually { channel.trace.withLock { $0.closes } == 1 })
        other.close()
        return (stream, channel)
    }

    @Test func aStreamClosesItsDescriptorOnceAfterLeavingTheTable() throws {
        let harness = try LinkHarness(role: .remote)
        let (_, channel) = try endedStream(harness)
        let trace = channel.trace.withLock { $0 }
        #expect(trace.closes == 1)
        #expect(trace.atClose == 0, "the stream was still in the link's table when its descriptor closed")
    }

    @Test func aResetOrAbortAfterTheStreamEndedTouchesNoDescriptor() throws {
        let harness = try LinkHarness(role: .remote)
        let (stream, channel) = try endedStream(harness)
        stream.receiveReset(.aborted)  // a RESET the reader dispatched from a table snapshot taken before the end
        stream.abort(sending: .aborted)  // a drain's abort from such a snapshot
        stream.linkDidClose()
        let trace = channel.trace.withLock { $0 }
        #expect(trace.usesAfterClose == [])
        #expect(trace.closes == 1)
    }
}
