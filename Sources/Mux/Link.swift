import Crypto
import Foundation
import Logging

/// One encrypted link between a local and a remote agent, carrying many streams.
///
/// Threads: the reader thread is the only one that reads `socket`; it decodes frames and hands them to streams
/// without ever blocking on one. The writer thread is the only one that writes `socket`, draining `queue`.
/// Either thread may end the link; `socket` is closed once, after both have finished.
///
/// `@unchecked Sendable`: stored properties are immutable or Sendable; mutable state is in `state` (a `Locked`).
final class Link: @unchecked Sendable {
    /// Which end of the tunnel this link serves. Only the local side opens streams.
    enum Role: Sendable {
        case local, remote
    }

    private struct State {
        var closeReason: LinkError?
        var isShuttingDown = false
        /// Local role: the id the next stream gets. Ids increase and are never reused within a link.
        var nextStreamID: StreamID = 1
        /// Remote role: the highest id the peer has opened.
        var highestStreamID: StreamID = 0
        /// Reader and writer threads still running.
        var runningThreads = 2
    }

    let role: Role
    let settings: TunnelSettings
    let logger: Logger
    /// Frames waiting for the writer thread.
    let queue: OutboundQueue
    /// Bytes received but not yet consumed, across all streams.
    let budget: ReceiveBudget
    /// Completed when both link threads have ended and the socket is closed.
    let finished = Completion()
    private let socket: Socket
    private let streams = StreamTable()
    private let state = Locked(State())
    private let onOpen: (@Sendable (Stream) -> Void)?
    private let onClose: @Sendable (Link, LinkError) -> Void

    /// A link over an already authenticated `socket`, which it now owns. `onOpen` (remote role) is called on
    /// the reader thread for each new stream and must not block. `onClose` is called once, when the link
    /// has fully ended, with the first reason it ended for.
    init(
        socket: Socket, keys: (sealer: FrameSealer, opener: FrameOpener), role: Role, settings: TunnelSettings,
        logger: Logger, onOpen: (@Sendable (Stream) -> Void)? = nil,
        onClose: @escaping @Sendable (Link, LinkError) -> Void
    ) {
        self.socket = socket
        self.role = role
        self.settings = settings
        self.logger = logger
        self.onOpen = onOpen
        self.onClose = onClose
        queue = OutboundQueue(dataLimit: settings.outboundQueueBytes)
        budget = ReceiveBudget(bytes: settings.linkReceiveBudget)
        socket.setNoDelay()
        socket.setReceiveTimeout(seconds: settings.deadLinkTimeout)
        let sealer = keys.sealer
        let decoder = FrameDecoder(opener: keys.opener)
        startThread(named: "link-writer") { self.runWriter(FrameEncoder(sealer: sealer)) }
        startThread(named: "link-reader") { self.runReader(decoder) }
    }

    /// The number of streams open on this link.
    var streamCount: Int { streams.count }

    /// Whether the link has ended or is ending.
    var isClosed: Bool { state.withLock { $0.closeReason != nil } }

    // MARK: Called by agents and stream threads

    /// Local role: registers a stream for a newly accepted client and sends OPEN. Returns `nil` if the link is
    /// closing. The calling thread becomes the stream's uplink thread.
    func openStream(socket client: Socket) -> Stream? {
        precondition(role == .local, "only the local agent opens streams")
        let window = makeReceiveWindow()
        let stream: Stream? = state.withLock { state in
            guard state.closeReason == nil, !state.isShuttingDown, state.nextStreamID < .max else { return nil }
            let stream = Stream(
                id: state.nextStreamID, link: self, window: window, sendCredit: 0, socket: client)
            state.nextStreamID += 1
            // Both under `state`'s lock: `close` cannot miss the stream, and OPENs reach the queue in id order.
            streams.insert(stream)
            queue.pushControl(.open(stream.id, window: UInt32(window.size)))
            return stream
        }
        guard let stream else {
            budget.release(window.size)
            return nil
        }
        logger.debug("stream \(stream.id) opened", metadata: ["client": "\(client.peerEndpoint)"])
        return stream
    }

    /// Ends the link now: aborts every stream and wakes both threads. Idempotent; the first reason wins.
    func close(_ reason: LinkError) {
        let isFirst = state.withLock { state in
            guard state.closeReason == nil else { return false }
            state.closeReason = reason
            return true
        }
        guard isFirst else { return }
        queue.close()
        socket.shutdown(.both)
        for stream in streams.snapshot().values { stream.abort(sending: nil) }
    }

    /// Ends the link cleanly: resets its streams, sends GOAWAY after everything queued, and lets the peer close.
    /// Waits up to `seconds` for that, then closes the link regardless.
    func shutdown(waitingUpTo seconds: Double) {
        state.withLock { $0.isShuttingDown = true }
        for stream in streams.snapshot().values { stream.abort(sending: .aborted) }
        queue.pushControl(.goAway(.shutdown))
        queue.finish()
        if !finished.wait(seconds: seconds) { close(.localShutdown) }
        finished.wait(seconds: seconds)
    }

    /// Called by a stream when its last thread ended.
    func streamDidEnd(id: StreamID, summary: String) {
        streams.remove(id)
        logger.debug("stream \(id) closed: \(summary)")
    }

    private func makeReceiveWindow() -> ReceiveWindow {
        let size = budget.reserve(upTo: settings.streamWindow, atLeast: Limits.minimumStreamWindow)
        return ReceiveWindow(size: size, targetSize: settings.streamWindow)
    }

    // MARK: The reader thread

    private func runReader(_ decoder: FrameDecoder) {
        var decoder = decoder
        let reason: LinkError
        do throws(LinkError) {
            while true {
                let count: Int
                do {
                    count = try decoder.receive { (buffer) throws(SocketError) in try socket.receive(into: buffer) }
                } catch {
                    throw error.code == EAGAIN || error.code == EWOULDBLOCK
                        ? .peerSilent(seconds: Int(settings.deadLinkTimeout)) : .socket(error)
                }
                guard count > 0 else { throw .closedByPeer }
                while let frame = try nextFrame(&decoder) { try dispatch(frame) }
            }
        } catch {
            reason = error
        }
        let isShuttingDown = state.withLock { $0.isShuttingDown }
        close(isShuttingDown ? .localShutdown : reason)
        threadDidFinish()
    }

    private func nextFrame(_ decoder: inout FrameDecoder) throws(LinkError) -> Frame? {
        do {
            return try decoder.nextFrame()
        } catch {
            throw .protocolViolation(error.description)
        }
    }

    private func dispatch(_ frame: Frame) throws(LinkError) {
        switch frame {
        case .data(let id, let bytes): try stream(id)?.receiveData(bytes)
        case .window(let id, let increment): try stream(id)?.receiveWindow(increment: increment)
        case .fin(let id): try stream(id)?.receiveFIN()
        case .reset(let id, let reason): try stream(id)?.receiveReset(reason)
        case .open(let id, let window): try acceptOpen(id: id, window: window)
        case .openOK(let id, let window):
            guard role == .local else { throw .protocolViolation("OPEN_OK sent to the remote agent") }
            try stream(id)?.receiveOpenOK(window: window)
        case .ping(let value): queue.pushControl(.pong(value))
        case .pong: break  // its arrival already proved the peer alive
        case .goAway: throw .peerShutDown
        }
    }

    /// The stream `id`, or `nil` for one that already ended (late frames are dropped).
    /// Throws for an id that was never opened.
    private func stream(_ id: StreamID) throws(LinkError) -> Stream? {
        if let stream = streams.snapshot()[id] { return stream }
        let highest = state.withLock { role == .local ? $0.nextStreamID - 1 : $0.highestStreamID }
        guard id <= highest else { throw .protocolViolation("frame for stream \(id), which was never opened") }
        return nil
    }

    private func acceptOpen(id: StreamID, window: UInt32) throws(LinkError) {
        guard role == .remote, let onOpen else { throw .protocolViolation("OPEN sent to the local agent") }
        let receiveWindow = makeReceiveWindow()
        let stream = Stream(id: id, link: self, window: receiveWindow, sendCredit: Int(window), socket: nil)
        let isNew = state.withLock { state in
            guard id > state.highestStreamID else { return false }
            state.highestStreamID = id
            if state.closeReason == nil { streams.insert(stream) }
            return true
        }
        guard isNew else {
            budget.release(receiveWindow.size)
            throw .protocolViolation("OPEN for stream \(id) does not increase the stream id")
        }
        logger.debug("stream \(id) opened")
        onOpen(stream)
    }

    // MARK: The writer thread

    private func runWriter(_ encoder: FrameEncoder) {
        var encoder = encoder
        var pings: UInt64 = 0
        writing: while true {
            let frames: [Frame]
            switch queue.next(maxBytes: Limits.writerBatchBytes, idleTimeout: settings.keepaliveInterval) {
            case .closed: break writing
            case .idle:
                pings += 1
                frames = [.ping(pings)]
            case .frames(let batch): frames = batch
            }
            do throws(LinkError) {
                for frame in frames {
                    if !encoder.canAppend(frame) { try flush(&encoder) }
                    do {
                        try encoder.append(frame)
                    } catch {
                        throw .protocolViolation(error.description)
                    }
                }
                try flush(&encoder)
            } catch {
                close(error)
                break writing
            }
        }
        socket.shutdown(.write)  // after a clean finish this tells the peer we are done
        threadDidFinish()
    }

    /// Sends the encoder's sealed bytes with one send(2) call sequence and empties it.
    private func flush(_ encoder: inout FrameEncoder) throws(LinkError) {
        do {
            try socket.sendAll(encoder.output.bytes)
        } catch {
            throw .socket(error)
        }
        encoder.output.count = 0
    }

    private func threadDidFinish() {
        let reason: LinkError? = state.withLock { state in
            state.runningThreads -= 1
            return state.runningThreads == 0 ? state.closeReason ?? .localShutdown : nil
        }
        guard let reason else { return }
        socket.close()
        onClose(self, reason)
        finished.complete()
    }
}
