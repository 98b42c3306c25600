import Crypto
import Foundation
import Glibc
import Logging

@testable import Mux

/// Records what a link tells its agent, for tests that drive a link directly.
final class RecordingDelegate: LinkDelegate, @unchecked Sendable {  // every field is a `Locked` or a `Completion`
    let opened = Locked<[Mux.Stream]>([])
    let closeReason = Locked<LinkError?>(nil)
    let closed = Completion()

    func link(_ link: Link, didOpen stream: Mux.Stream, to target: StreamTarget) {
        opened.withLock { $0.append(stream) }
    }

    func link(_ link: Link, didRequestListen address: Endpoint, forward: UInt32) {}
    func link(_ link: Link, didCancelListen forward: UInt32) {}
    func link(_ link: Link, didAnswerListen forward: UInt32, result: ListenResult, port: UInt16) {}

    func linkDidClose(_ link: Link, reason: LinkError) {
        closeReason.withLock { $0 = reason }
        closed.complete()
    }

    /// Waits up to 5 s for the link to end; returns why it did.
    func awaitClose() -> LinkError? {
        closed.wait(seconds: 5) ? closeReason.withLock { $0 } : nil
    }
}

/// One real `Link` over a socketpair, and the raw peer at the other end: the peer seals and sends whatever
/// frames a test gives it, rules broken included, and reads what the link sends. No agents, ports or sleeps.
final class LinkHarness {
    let link: Link
    let delegate = RecordingDelegate()
    let limiter: StreamLimiter
    private let peerSocket: Socket
    private var peerSealer: FrameSealer
    private var peerDecoder: FrameDecoder

    /// A link in `role`, started; the peer plays the other role.
    init(role: Link.Role, settings: TunnelSettings = TunnelSettings()) throws {
        var ends: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw SocketError(call: "socketpair", code: errno)
        }
        let key = try PreSharedKey(base64: PreSharedKey.generateBase64(), source: "test")
        let client = try ClientHandshake(key: key, nowMillis: 1_800_000_000_000)
        let (reply, serverKeys) = try ServerHandshake.verify(client.hello, keys: [key], nowMillis: 1_800_000_000_000)
            .respond()
        let clientKeys = try client.receive(serverHello: reply)
        let (linkKeys, peerKeys) =
            role == .remote
            ? (serverKeys.serverSide(), clientKeys.clientSide()) : (clientKeys.clientSide(), serverKeys.serverSide())
        let metrics = AgentMetrics()
        limiter = StreamLimiter(limit: 100, metrics: metrics)
        link = Link(
            socket: Socket(fd: ends[0]), keys: linkKeys, role: role, settings: settings, limiter: limiter,
            metrics: metrics, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }, delegate: delegate)
        peerSocket = Socket(fd: ends[1])
        peerSocket.setReceiveTimeout(seconds: 5)
        peerSealer = peerKeys.sealer
        peerDecoder = FrameDecoder(opener: peerKeys.opener)
        try link.start()
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
