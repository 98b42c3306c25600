import CoreMetrics
import Crypto
import Foundation
import Glibc
import Logging
import Testing

@testable import Mux

/// Records what a link tells its agent, for tests that drive a link directly.
final class RecordingDelegate: LinkDelegate, @unchecked Sendable {  // every field is a `Locked` or a `Completion`
    let opened = Locked<[Mux.Stream]>([])
    let closeReason = Locked<LinkError?>(nil)
    let closed = Completion()

    func link(_ link: Link, didOpen stream: Mux.Stream, to target: StreamTarget, from origin: StreamOrigin?) {
        opened.withLock { $0.append(stream) }
    }

    /// The flows the peer opened, each attached to a recording end, unless `refusesFlows` names a reason.
    let flows = Locked<[(id: FlowID, target: StreamTarget, end: RecordingFlow)]>([])
    let refusesFlows = Locked<ResetReason?>(nil)

    func link(_ link: Link, didOpenFlow id: FlowID, to target: StreamTarget, from origin: StreamOrigin?) -> ResetReason?
    {
        if let reason = refusesFlows.withLock({ $0 }) { return reason }
        let end = RecordingFlow()
        guard link.attachFlow(id, to: end) else { return .aborted }
        flows.withLock { $0.append((id, target, end)) }
        return nil
    }

    func link(_ link: Link, didRequestListen address: Endpoint, kind: TrafficKind, forward: UInt32) {}
    func link(_ link: Link, didCancelListen forward: UInt32) {}
    func link(_ link: Link, didAnswerListen forward: UInt32, result: ListenResult, port: UInt16) {}

    let detachments = Locked(0)

    func linkDidDetach(_ link: Link) { detachments.withLock { $0 += 1 } }

    func linkDidClose(_ link: Link, reason: LinkError) {
        closeReason.withLock { $0 = reason }
        closed.complete()
    }

    /// Waits up to 5 s for the link to end; returns why it did.
    func awaitClose() -> LinkError? {
        closed.wait(seconds: 5) ? closeReason.withLock { $0 } : nil
    }
}

/// A flow's end that records what the link hands it.
final class RecordingFlow: FlowEndpoint, @unchecked Sendable {  // every field is a `Locked`
    let datagrams = Locked<[[UInt8]]>([])
    let closes = Locked<[ResetReason]>([])
    let linkClosed = Locked(false)

    func receiveDatagram(_ payload: UnsafeRawBufferPointer) { datagrams.withLock { $0.append(Array(payload)) } }
    func receiveClose(_ reason: ResetReason) { closes.withLock { $0.append(reason) } }
    func linkDidClose() { linkClosed.withLock { $0 = true } }
}

/// A socketpair: two connected ends of a local stream socket, standing in for a TCP connection.
func connectedPair() throws -> (Socket, Socket) {
    var ends: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
        throw SocketError(call: "socketpair", code: errno)
    }
    return (Socket(fd: ends[0]), Socket(fd: ends[1]))
}

/// Session keys for both ends of one link, from a real handshake.
func linkKeys(for role: Link.Role) throws -> (
    link: (sealer: FrameSealer, opener: FrameOpener), peer: (sealer: FrameSealer, opener: FrameOpener)
) {
    let (clientKeys, serverKeys) = try handshakeKeys()
    return role == .remote
        ? (serverKeys.serverSide(), clientKeys.clientSide()) : (clientKeys.clientSide(), serverKeys.serverSide())
}

/// The session keys of one real handshake, as the client and as the server derived them.
func handshakeKeys() throws -> (client: SessionKeys, server: SessionKeys) {
    let key = try PreSharedKey(base64: PreSharedKey.generateBase64(), source: "test")
    let client = try ClientHandshake(key: key, nowMillis: 1_800_000_000_000)
    let (reply, serverKeys) = try ServerHandshake.verify(client.hello, keys: [key], nowMillis: 1_800_000_000_000)
        .respond()
    return (try client.receive(serverHello: reply), serverKeys)
}

/// Metrics that count nowhere.
let uncountedLinkMetrics = LinkMetrics(
    streamsOpened: Counter(label: "test", factory: NOOPMetricsHandler.instance),
    streamOpenTime: Timer(label: "test", factory: NOOPMetricsHandler.instance),
    bytesToTarget: Counter(label: "test", factory: NOOPMetricsHandler.instance),
    bytesToClient: Counter(label: "test", factory: NOOPMetricsHandler.instance),
    datagrams: DatagramMetrics(factory: NOOPMetricsHandler.instance), recordReset: { _ in },
    roundTrip: Gauge(label: "test", factory: NOOPMetricsHandler.instance),
    bytesSent: Counter(label: "test", factory: NOOPMetricsHandler.instance),
    bytesReceived: Counter(label: "test", factory: NOOPMetricsHandler.instance),
    info: Gauge(label: "test", factory: NOOPMetricsHandler.instance), release: {})

/// A fixed number of stream slots.
final class TestSlots: SlotPool {
    private let free: Locked<Int>
    private let beforeGranting = Locked<(@Sendable () -> Void)?>(nil)

    init(_ count: Int) { free = Locked(count) }

    /// Runs `action` on the thread that asks for a slot, each time before it is granted: a test's way into the
    /// moment between a link's checks.
    func onAcquire(_ action: @escaping @Sendable () -> Void) {
        beforeGranting.withLock { $0 = action }
    }

    func tryAcquire() -> Bool {
        beforeGranting.withLock { $0 }?()
        return free.withLock { free in
            guard free > 0 else { return false }
            free -= 1
            return true
        }
    }

    func release() { free.withLock { $0 += 1 } }

    var refusal: String { "no slot left" }
}

/// A started link in `role` over `channel`, with `slots` and settings but no agent; with `resumption`, its session
/// may continue on another connection.
func makeLink(
    _ role: Link.Role, over channel: any ByteChannel, keys: (sealer: FrameSealer, opener: FrameOpener),
    resumption: SessionResumption? = nil, settings: LinkSettings, slots: any SlotPool, delegate: any LinkDelegate
) throws -> Link {
    let link = Link(
        connection: LinkConnection(
            channel: channel, peer: Endpoint(host: "socketpair", port: 0), keys: keys, binding: []),
        resumption: resumption, role: role, settings: settings, slots: slots,
        metrics: uncountedLinkMetrics, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() },
        delegate: delegate)
    try link.start()
    return link
}

/// Opens a stream on `link` (taking one of `slots`) and carries a client's socketpair end on it, as a local agent
/// carries a client; returns the client's end, whose receives wait at most `receiveTimeout` seconds.
func openCarriedClient(on link: Link, slots: TestSlots, receiveTimeout: Double) throws -> Socket {
    #expect(slots.tryAcquire())
    let stream = try #require(link.openStream(to: .defaultTarget))
    let (client, streamEnd) = try connectedPair()
    try startThread(named: "test-client") {
        if stream.awaitEstablished(within: 10) == .established, stream.attach(streamEnd) {
            stream.run()
        } else {
            stream.abandon()
            streamEnd.close()
        }
    }
    client.setReceiveTimeout(seconds: receiveTimeout)
    return client
}

/// Reads `socket` until end of stream, or until a receive waits longer than its timeout (which a test then sees as
/// missing bytes).
func readAll(_ socket: Socket) -> [UInt8] {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while let count = try? buffer.withUnsafeMutableBytes({ raw in
        try Result { () throws(SocketError) in try socket.receive(into: raw) }.get()
    }), count > 0 {
        bytes += buffer[..<count]
    }
    return bytes
}

/// One real `Link` over a socketpair, and the raw peer at the other end: the peer seals and sends whatever
/// frames a test gives it, rules broken included, and reads what the link sends. No agents, ports or sleeps.
final class LinkHarness {
    let link: Link
    let delegate = RecordingDelegate()
    let slots = TestSlots(100)
    private let peerSocket: Socket
    private var peerSealer: FrameSealer
    private var peerDecoder: FrameDecoder

    /// A link in `role`, started; the peer plays the other role. With `resumable`, the link's session may
    /// resume, so it keeps and acknowledges sequenced frames.
    init(role: Link.Role, settings: LinkSettings = TunnelSettings().link, resumable: Bool = false) throws {
        let (linkEnd, peerEnd) = try connectedPair()
        let (linkKeys, peerKeys) = try linkKeys(for: role)
        link = try makeLink(
            role, over: linkEnd, keys: linkKeys, resumption: resumable ? try handshakeKeys().client.resumption : nil,
            settings: settings, slots: slots, delegate: delegate)
        peerSocket = peerEnd
        peerSocket.setReceiveTimeout(seconds: 5)
        peerSealer = peerKeys.sealer
        peerDecoder = FrameDecoder(opener: peerKeys.opener)
    }

    deinit {
        link.close(.localShutdown)
        peerSocket.close()
    }

    /// Seals `frames` as the peer and sends them in one write.
    func send(_ frames: [Frame]) throws {
        var bytes: [UInt8] = []
        for frame in frames {
            var body = [UInt8](repeating: 0, count: FrameCodec.encodedSize(of: frame))
            body.withUnsafeMutableBytes { FrameCodec.encode(frame, into: $0.baseAddress!) }
            bytes += try seal(body)
        }
        try peerSocket.sendAll(bytes)
    }

    /// Sends a frame body as it is, sealed as the peer: one the codec would never encode (too long, an unknown
    /// kind).
    func sendSealedBody(_ body: [UInt8]) throws {
        try peerSocket.sendAll(try seal(body))
    }

    /// The next sealed frame of the peer's direction.
    private func seal(_ body: [UInt8]) throws -> [UInt8] {
        var sealed = [UInt8](repeating: 0, count: body.count + SealedFrame.overhead)
        try body.withUnsafeBytes { raw in
            try sealed.withUnsafeMutableBytes { out in try peerSealer.seal(raw, into: out.baseAddress!) }
        }
        return sealed
    }

    /// Sends raw bytes as they are: tampering.
    func sendRaw(_ bytes: [UInt8]) throws {
        try peerSocket.sendAll(bytes)
    }

    /// Reads what the link sends until a frame matches `wanted` (up to 5 s); PINGs, PADDING and anything else
    /// before it are skipped. Returns the frame, or nil if the link closed or stayed silent.
    func receive(where wanted: (Frame) -> Bool) -> Frame? {
        while true {
            while let frame = try? peerDecoder.nextFrame() {
                if wanted(frame) { return frame }
            }
            let count = try? peerDecoder.receive { (buffer) throws(SocketError) in try peerSocket.receive(into: buffer)
            }
            guard let count, count > 0 else { return nil }
        }
    }

    /// The link's reason for ending, once it has.
    func awaitClose() -> LinkError? { delegate.awaitClose() }
}

extension OutboundFrame {
    /// `frame` as the writer gets it: DATA's bytes in a block of their own.
    init(_ frame: Frame) {
        if case .data(let id, let bytes) = frame {
            self = .data(id, DataBlock(copying: bytes))
        } else {
            self = .frame(frame)
        }
    }

    /// The frame as a value, DATA's bytes copied out of their block.
    var asFrame: Frame {
        switch self {
        case .frame(let frame): frame
        case .data(let id, let block): .data(id, [UInt8](block.payload))
        case .datagram(let datagram): .datagram(datagram.flow, datagram.payload)
        }
    }
}

extension DataBlock {
    /// A block holding `bytes`.
    convenience init(copying bytes: [UInt8]) {
        self.init()
        bytes.withUnsafeBytes { room.copyMemory(from: $0) }
        setCount(bytes.count)
    }
}
