import Glibc
import Logging

/// The end of one UDP flow that reaches its target (the remote agent's, or for `-R …/udp` the local agent's): on a
/// thread of its own it decides the flow's target (by the allow rules, or the reverse forward's), resolves it, and
/// connects a UDP socket of its own to it, so that the target's replies, and only they, come back to this flow;
/// then it relays each datagram the target sends to the link, until the flow has carried nothing for the idle
/// timeout or is closed.
///
/// Threads: the link's reader calls `receiveDatagram`, which sends to the target without waiting (or, while the
/// socket is being made, holds a few datagrams); the flow's thread alone receives from the socket and closes it,
/// under `phase`'s lock, so a send never reaches a closed descriptor. Anyone may close the flow
/// (`receiveClose`, `linkDidClose`, `evict`): that shuts the socket down, which wakes the flow's thread.
final class TargetFlow: FlowEndpoint, LimitedFlow {
    private enum Phase {
        /// The socket is being made; datagrams that arrive meanwhile wait here.
        case preparing(held: [[UInt8]], bytes: Int)
        case relaying(DatagramSocket)
        case closed
    }

    let id: FlowID
    let activity = FlowActivity()
    private let link: Link
    private let target: StreamTarget
    private let decide: @Sendable () -> AllowList.Decision
    private let idleTimeout: Double
    private let limiter: FlowLimiter
    private let logger: Logger
    private let phase = Locked(Phase.preparing(held: [], bytes: 0))
    private var metrics: DatagramMetrics { link.metrics.datagrams }

    /// The end of flow `id` of `link`, to `target` where and if `decide` allows it, holding a slot of `limiter`.
    private init(
        id: FlowID, link: Link, target: StreamTarget, idleTimeout: Double, limiter: FlowLimiter, logger: Logger,
        decide: @escaping @Sendable () -> AllowList.Decision
    ) {
        self.id = id
        self.link = link
        self.target = target
        self.decide = decide
        self.idleTimeout = idleTimeout
        self.limiter = limiter
        self.logger = logger
    }

    /// Answers the peer's FLOW_OPEN `id` on `link` (on the link's reader, for `LinkDelegate`): within `limiter`'s
    /// caps (counting the link's peer as the source), a flow whose thread (from the `WorkerPool`) reaches `target`
    /// as `decide` says. Returns `nil` once the flow is attached to the link, or the reason it is refused, which
    /// `warnings` lets a line say. Never blocks.
    static func accept(
        _ id: FlowID, on link: Link, to target: StreamTarget, idleTimeout: Double, limiter: FlowLimiter,
        logger: Logger, warnings: LogThrottle, decide: @escaping @Sendable () -> AllowList.Decision
    ) -> ResetReason? {
        let flow = TargetFlow(
            id: id, link: link, target: target, idleTimeout: idleTimeout, limiter: limiter, logger: logger,
            decide: decide)
        guard limiter.admit(flow, from: IPNetwork.bytes(of: link.peer.host) ?? []) else {
            warnings.log(logger, level: .warning, "refused UDP flow \(id) to \(target): \(limiter.refusal)")
            return .tooManyStreams
        }
        guard link.attachFlow(id, to: flow) else {
            limiter.release(flow)
            return .aborted
        }
        link.metrics.datagrams.countOpened()
        do {
            try WorkerPool.shared.run(named: "flow-\(id)") { flow.run() }
        } catch {
            logger.error("ending UDP flow \(id): \(error)")
            flow.end(telling: .aborted)
        }
        return nil
    }

    // MARK: The flow's thread

    /// Decides and connects the target, then relays its datagrams until the flow ends; returns when it has.
    private func run() {
        let decision = decide()
        if let refusal = decision.refusal {
            metrics.recordRefusal(refusal)
            logger.warning("UDP flow \(id) to \(target) refused: \(decision.verdict)")
            return end(telling: refusal)
        }
        let socket: DatagramSocket
        do {
            socket = try DatagramSocket.connect(to: decision.addresses[0])
        } catch {
            logger.warning("UDP flow \(id): cannot reach \(target): \(error)")
            return end(telling: .targetUnreachable)
        }
        logger.debug("UDP flow \(id) to \(target): \(decision.verdict)")
        guard startRelaying(on: socket) else {
            socket.close()
            return end(telling: nil)
        }
        relay(from: socket)
        phase.withLock { phase in
            phase = .closed
            socket.close()
        }
        end(telling: .aborted)
    }

    /// Sends the datagrams held so far, in order, and lets later ones go straight to `socket`; `false` if the
    /// flow was closed meanwhile.
    private func startRelaying(on socket: DatagramSocket) -> Bool {
        phase.withLock { phase in
            guard case .preparing(let held, _) = phase else { return false }
            for datagram in held { _ = datagram.withUnsafeBytes { send($0, on: socket) } }
            phase = .relaying(socket)
            return true
        }
    }

    /// Relays the target's datagrams to the link until the socket is shut down or the flow is idle. Each
    /// datagram is received into an array of its own size, which goes to the link as it is: an idle flow holds no
    /// buffer (a 64 KiB one per flow cost 4 KiB of resident memory each, a fifth of an idle flow).
    private func relay(from socket: DatagramSocket) {
        socket.requestReceiveBuffer(Limits.datagramReceiveBuffer)
        socket.socket.setReceiveTimeout(seconds: idleTimeout)
        while true {
            let count: Int
            var datagram: [UInt8]
            do throws(SocketError) {
                let size = try socket.nextDatagramSize()
                datagram = [UInt8](repeating: 0, count: min(size, Limits.maxDatagram + 1))
                count = try datagram.withUnsafeMutableBytes { buffer in
                    Result { () throws(SocketError) in try socket.receive(into: buffer).count }
                }.get()
            } catch {
                if error.isTimeout {
                    let idle = activity.idleSeconds
                    if idle >= idleTimeout { return logger.debug("UDP flow \(id) idle for \(Int(idle)) s: closed") }
                    socket.socket.setReceiveTimeout(seconds: max(0.01, idleTimeout - idle))
                    continue
                }
                if error.code == ECONNREFUSED { continue }  // an earlier datagram's ICMP port unreachable
                return logger.warning("UDP flow \(id): receiving from \(target) failed: \(error)")
            }
            if count == 0, isClosed { return }
            guard count <= Limits.maxDatagram else {
                metrics.recordDrop(.tooLarge)
                continue
            }
            activity.touchToClient()
            if datagram.count > count { datagram.removeLast(datagram.count - count) }
            if link.sendDatagram(datagram, on: id) {
                metrics.countToClient(bytes: count)
            }
        }
    }

    private var isClosed: Bool {
        phase.withLock { if case .closed = $0 { true } else { false } }
    }

    /// Returns the flow's slot and, with a `reason`, tells the peer the flow is gone.
    private func end(telling reason: ResetReason?) {
        limiter.release(self)
        if let reason { link.closeFlow(id, reason: reason) }
    }

    // MARK: Called by the link's reader, or to end the flow

    func receiveDatagram(_ payload: UnsafeRawBufferPointer) {
        activity.touchToTarget()
        let drop: DatagramDrop? = phase.withLock { phase in
            switch phase {
            case .preparing(var held, let bytes):
                guard held.count < Limits.heldDatagrams, bytes + payload.count <= Limits.heldDatagramBytes else {
                    return .targetNotReady
                }
                held.append(Array(payload))
                phase = .preparing(held: held, bytes: bytes + payload.count)
                return nil
            case .relaying(let socket): return send(payload, on: socket)
            case .closed: return .flowRefused
            }
        }
        if let drop { metrics.recordDrop(drop) }
    }

    /// Sends one datagram to the target without waiting; returns why it was dropped, if it was. Called with
    /// `phase` locked, so the socket is open.
    @discardableResult
    private func send(_ payload: UnsafeRawBufferPointer, on socket: DatagramSocket) -> DatagramDrop? {
        do {
            guard try socket.send(payload) else { return .socketFull }
        } catch {
            return .sendFailed
        }
        metrics.countToTarget(bytes: payload.count)
        return nil
    }

    func receiveClose(_ reason: ResetReason) { close() }

    func linkDidClose() { close() }

    func evict() {
        close()
        link.closeFlow(id, reason: .aborted)
    }

    /// Marks the flow closed and wakes its thread, which closes the socket.
    private func close() {
        phase.withLock { phase in
            if case .relaying(let socket) = phase { socket.shutdown() }
            phase = .closed
        }
    }
}
