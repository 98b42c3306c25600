import Crypto
import Synchronization

/// One authenticated connection (TCP, or TLS records on TCP) that carries a link for a while. A link runs on one
/// connection at a time; when that one breaks, the link's session may continue on a new one (docs/PROTOCOL.md §10),
/// so a connection's life is shorter than its link's.
///
/// Threads: before the link runs on it, the agent thread that set it up sends and receives its first frames
/// (`sendOpening`, `receiveFirst`); then the link's writer thread alone writes `channel` and uses `encoder`, and
/// its reader thread alone reads it and uses `decoder`. The last of the two to end closes `channel`.
///
/// `@unchecked Sendable`: `encoder` and `decoder` are used by one thread at a time, handed from the agent's thread
/// to the link's threads when `Link` starts them; the rest is immutable or synchronised.
final class LinkConnection: @unchecked Sendable {
    let channel: any LinkChannel
    /// The other agent's address on this connection.
    let peer: Endpoint
    /// What a resumption on this connection proves itself against (`SessionKeys.binding`).
    let binding: [UInt8]
    /// When it was set up, for `--link-max-age`.
    let openedAt = ContinuousClock.now
    /// Sealed bytes sent and received on it so far, for `--link-max-bytes`.
    let bytes = Atomic<Int>(0)
    /// When its reader last received bytes, in `MonotonicClock` nanoseconds.
    let lastReceived = Atomic<UInt64>(MonotonicClock.nanoseconds())
    /// Completed when the link stops running on this connection: it failed, the link moved to another one, or
    /// the link ended.
    let released = Completion()
    /// Completed when the link's threads on this connection have ended and it is closed.
    let ended = Completion()
    var encoder: FrameEncoder
    var decoder: FrameDecoder
    private let runningThreads = Atomic<Int>(0)

    /// A connection over `channel`, already authenticated with `peer`, sealing and opening with `keys`.
    init(channel: any LinkChannel, peer: Endpoint, keys: (sealer: FrameSealer, opener: FrameOpener), binding: [UInt8]) {
        self.channel = channel
        self.peer = peer
        self.binding = binding
        encoder = FrameEncoder(sealer: keys.sealer)
        decoder = FrameDecoder(opener: keys.opener)
    }

    /// Sends `frames` as the opening of the connection, with padding, before the link runs on it: the first
    /// frames have fixed sizes, which padding hides from an observer of sealed sizes (section 4.1).
    func sendOpening(_ frames: [Frame]) throws(LinkError) {
        do {
            for frame in frames + [.padding(count: Int.random(in: Limits.openingPadding))] {
                try encoder.append(.frame(frame))
            }
        } catch {
            throw .protocolViolation(error.description)
        }
        do {
            try channel.sendAll(encoder.output.bytes)
        } catch {
            throw .socket(error)
        }
        encoder.output.count = 0
    }

    /// The peer's first frame other than PADDING, received before `deadline`, before the link runs on the
    /// connection; any frames behind it stay in `decoder` for the link's reader.
    func receiveFirst(before deadline: ContinuousClock.Instant) throws(LinkError) -> Frame {
        while true {
            do {
                while let frame = try decoder.nextFrame() {
                    if case .padding = frame { continue }
                    return frame
                }
            } catch {
                throw .protocolViolation(error.description)
            }
            let remaining = deadline - .now
            guard remaining > .zero else { throw .noSessionAnswer }
            channel.setTimeouts(receive: max(0.001, remaining.inSeconds), send: 0)
            let count: Int
            do {
                count = try decoder.receive { (buffer) throws(SocketError) in try channel.receive(into: buffer) }
            } catch {
                throw error.isTimeout ? .noSessionAnswer : .socket(error)
            }
            guard count > 0 else { throw .closedByPeer }
        }
    }

    /// Seconds since the reader last received a byte (or since the connection was set up).
    var silence: Double {
        Double(MonotonicClock.nanoseconds() &- lastReceived.load(ordering: .relaxed)) / 1e9
    }

    /// Counts the link's threads that run on this connection from now on.
    func threadsWillStart(_ count: Int) {
        runningThreads.add(count, ordering: .relaxed)
    }

    /// Called by each link thread of this connection as it ends; the last one closes the channel.
    func threadDidFinish() {
        guard runningThreads.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 else { return }
        released.complete()
        channel.close()
        ended.complete()
    }

    /// Stops both directions now: wakes the link's threads blocked in a receive or a send on it.
    func shutDown() {
        channel.shutdown(.both)
    }
}
