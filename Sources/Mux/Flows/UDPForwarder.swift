import Glibc
import Logging

/// A UDP forward (`-L [BIND:]PORT:HOST:HOSTPORT/udp`, or a SOCKS5 client's UDP association): its socket, and a
/// flow per client address (and, for SOCKS, per target). One thread receives every client's datagrams and sends
/// each on its flow, opening one (on the link `pickLink` gives) for a client and target it has not seen, and ends
/// flows idle for the idle timeout. Replies come back on the link's reader thread, which sends them from the same
/// socket to their client.
///
/// Ownership: the forward's thread closes the socket once it stops, under `socketState`'s lock, which every
/// reply's send also holds, so that no reply reaches a descriptor already closed (and perhaps reused).
final class UDPForwarder: Sendable {
    /// How a forward's datagrams name their target.
    enum Addressing: Sendable {
        /// `-L …/udp` (and, on the remote agent, `-R …/udp`): every datagram goes to this target, as the peer
        /// reaches it.
        case fixed(StreamTarget)
        /// A SOCKS5 UDP association: each datagram starts with the header that names its target (RFC 1928 §7),
        /// and each reply gets one naming where it came from. Only datagrams from `client` (an address's 4 or 16
        /// bytes: the control connection's peer) are taken.
        case socks(client: [UInt8])
    }

    /// The address bound (with the real port when port 0 was asked for).
    let endpoint: Endpoint
    let addressing: Addressing
    let metrics: DatagramMetrics
    private let socket: DatagramSocket
    private let flows = Locked<[FlowKey: ClientFlow]>([:])
    private let limiter: FlowLimiter
    private let idleTimeout: Double
    private let pickLink: @Sendable () -> Link?
    private let logger: Logger
    private let warnings = LogThrottle()
    private enum SocketState { case bound, serving, stopping, closed }
    private let socketState = Locked(SocketState.bound)
    private let finished = Completion()

    /// Binds `listen` now, so that a port in use fails here. Flows go where `addressing` says, each on the link
    /// `pickLink` gives when its first datagram comes, holding a slot of `limiter`, until idle for `idleTimeout`
    /// seconds.
    init(
        listen: Endpoint, addressing: Addressing, limiter: FlowLimiter, idleTimeout: Double,
        metrics: DatagramMetrics, logger: Logger, pickLink: @escaping @Sendable () -> Link?
    ) throws(ListenError) {
        socket = try listen.bind { (addresses) throws(SocketError) in try DatagramSocket.bind(to: addresses) }
        socket.requestReceiveBuffer(Limits.datagramReceiveBuffer)
        endpoint = socket.localEndpoint
        self.addressing = addressing
        self.limiter = limiter
        self.idleTimeout = idleTimeout
        self.metrics = metrics
        self.logger = logger
        self.pickLink = pickLink
    }

    /// Starts the forward's thread.
    func start() throws(ThreadError) {
        socketState.withLock { $0 = .serving }
        do {
            try startThread(named: "udp-forward") { self.serve() }
        } catch {
            socketState.withLock { $0 = .bound }
            throw error
        }
    }

    /// Stops taking datagrams, ends every flow, and waits (briefly) for the socket to be closed, so that the port
    /// is free when this returns. Idempotent.
    func stop() {
        if requestStop() { finished.wait(seconds: 2) }
    }

    /// Stops taking datagrams without waiting: the forward's thread ends every flow and closes the socket soon
    /// after, for threads that must not block (a link's reader). Closes the socket itself if no thread serves it.
    /// Idempotent; returns whether a serving thread was woken.
    @discardableResult
    func requestStop() -> Bool {
        let previous = socketState.withLock { state in
            defer { if state != .closed { state = .stopping } }
            if state == .serving { socket.shutdown() }
            return state
        }
        if previous == .bound { closeSocket() }
        return previous == .serving
    }

    // MARK: The forward's thread

    private func serve() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Limits.maxDatagram + 1, alignment: 8)
        defer { buffer.deallocate() }
        socket.socket.setReceiveTimeout(seconds: Limits.flowSweepInterval)
        var lastSweep = ContinuousClock.now
        while true {
            do {
                let (count, sender) = try socket.receive(into: buffer)
                // A stop shuts the socket down, which makes a receive return 0 at once: only then is it asked,
                // not under its lock for every datagram.
                if count == 0, isStopping { break }
                if count > Limits.maxDatagram {
                    metrics.recordDrop(.tooLarge)
                } else {
                    forward(UnsafeRawBufferPointer(rebasing: buffer[..<count]), from: sender)
                }
            } catch {
                if isStopping { break }
                if !error.isTimeout {
                    warnings.log(logger, level: .error, "UDP forward \(endpoint): \(error); retrying every 100 ms")
                    sleep(seconds: 0.1)
                }
            }
            if ContinuousClock.now - lastSweep >= .seconds(Limits.flowSweepInterval) {
                endIdleFlows()
                lastSweep = .now
            }
        }
        for flow in flows.withLock({ Array($0.values) }) { flow.close() }
        closeSocket()
        finished.complete()
    }

    private var isStopping: Bool { socketState.withLock { $0 != .serving } }

    private func closeSocket() {
        socketState.withLock { state in
            state = .closed
            socket.close()
        }
    }

    /// Sends a client's datagram on its flow, opening one for a new client (and target).
    private func forward(_ datagram: UnsafeRawBufferPointer, from sender: ResolvedAddress) {
        let target: StreamTarget
        let payload: UnsafeRawBufferPointer
        switch addressing {
        case .fixed(let fixed): (target, payload) = (fixed, datagram)
        case .socks(let client):
            guard WireHost.unmapped(sender.addressBytes) == WireHost.unmapped(client),
                let (named, offset) = try? SocksDatagram.parse(datagram)
            else { return metrics.recordDrop(.socksRefused) }
            (target, payload) = (.endpoint(named), UnsafeRawBufferPointer(rebasing: datagram[offset...]))
        }
        let key = FlowKey(sender, target: target)
        if let flow = flows.withLock({ $0[key] }) ?? open(for: sender, to: target, key: key) {
            flow.send(payload)
        }
    }

    /// A new flow for the client at `sender` to `target`, on the link with the fewest streams; `nil`, counting
    /// the datagram as dropped, when no link is up or a cap refuses it.
    private func open(for sender: ResolvedAddress, to target: StreamTarget, key: FlowKey) -> ClientFlow? {
        guard let link = pickLink() else {
            metrics.recordDrop(.noLink)
            warnings.log(logger, level: .warning, "UDP forward \(endpoint): no link up; datagrams are dropped")
            return nil
        }
        let flow = ClientFlow(client: sender, target: target, key: key, forward: self)
        guard limiter.admit(flow, from: key.address) else {
            metrics.recordDrop(.flowRefused)
            warnings.log(logger, level: .warning, "UDP client \(sender.endpoint) refused: \(limiter.refusal)")
            return nil
        }
        // In the table before the link knows it, so that a FLOW_CLOSE for it always finds it there.
        flows.withLock { $0[key] = flow }
        let destination = socket.socket.localAddress
        let origin = StreamOrigin(
            source: StreamOrigin.Address(bytes: sender.addressBytes, port: sender.port),
            destination: StreamOrigin.Address(bytes: destination.addressBytes, port: destination.port))
        guard let id = link.openFlow(to: target, from: origin, endpoint: flow) else {
            forget(flow)
            metrics.recordDrop(.noLink)
            return nil
        }
        flow.opened(on: link, as: id)
        metrics.countOpened()
        logger.debug("UDP flow \(id) from \(sender.endpoint) to \(target)")
        return flow
    }

    private func endIdleFlows() {
        let idle = flows.withLock { $0.values.filter { $0.activity.idleSeconds >= idleTimeout } }
        for flow in idle { flow.close() }
    }

    // MARK: Called by flows, on any thread

    /// Forgets `flow` and returns its slot; the client's next datagram opens a new one.
    func forget(_ flow: ClientFlow) {
        flows.withLock { flows in
            if flows[flow.key] === flow { flows[flow.key] = nil }
        }
        limiter.release(flow)
    }

    /// Sends `flow`'s reply to its client without waiting (after a header naming the flow's target, for SOCKS);
    /// counted, or dropped and counted.
    func sendToClient(_ payload: UnsafeRawBufferPointer, of flow: ClientFlow) {
        let drop: DatagramDrop? = socketState.withLock { state in
            guard state == .serving else { return .flowRefused }
            do {
                guard case .socks = addressing, case .endpoint(let source) = flow.target else {
                    return try socket.send(payload, to: flow.client) ? nil : .socketFull
                }
                let datagram = SocksDatagram.header(from: source) + payload
                return try datagram.withUnsafeBytes { try socket.send($0, to: flow.client) } ? nil : .socketFull
            } catch {
                return .sendFailed
            }
        }
        if let drop { return metrics.recordDrop(drop) }
        metrics.countToClient(bytes: payload.count)
    }

    /// The remote agent refused `flow`: counted and said (at most every few seconds).
    func recordRefusal(_ reason: ResetReason, of flow: ClientFlow) {
        metrics.recordRefusal(reason)
        let why = reason == .notAllowed ? "not allowed by its --allow rules" : "\(reason)"
        warnings.log(
            logger, level: .warning,
            "UDP client \(flow.client.endpoint): the remote agent refused \(flow.target): \(why)")
    }
}
