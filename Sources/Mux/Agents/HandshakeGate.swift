import CLinux
import CoreMetrics
import Crypto
import Glibc
import Logging

/// The remote agent's pre-authentication stage: accepts connections on the link port and holds each one, on a
/// single thread, until its client hello verifies; only then does the connection get a link and threads.
///
/// What a stranger can make it spend is bounded and small: a pending connection is a descriptor, a table entry
/// and, once bytes arrive, a buffer of at most one hello (1.1 KiB). The hello's header is checked with one AEAD
/// open per key before anything else, and no X25519 runs for a peer without the key. Nothing is ever sent
/// before a hello verifies; every failure (silence, wrong key, stale clock, replay, shedding) ends in the same
/// close, at the connection's deadline (drawn at accept, 0.5 to 1.5 handshake timeouts), or as soon as the peer
/// closes its side, or when a flood sheds it.
///
/// Threads: the gate thread owns the listening socket, every pending connection, the replay cache and the
/// report; no other thread touches them. `stop()` wakes it by shutting the listening socket down (`ServedSocket`).
final class HandshakeGate: Sendable {
    /// What the gate admits, and for how long.
    struct Configuration: Sendable {
        /// The keys local agents may use (two during a rotation).
        var keys: [PreSharedKey]
        /// Seconds a connection has to deliver its hello (its deadline is 0.5 to 1.5 times this).
        var handshakeTimeout: Double
        /// Connections pending at once, from everyone.
        var maxPending: Int
        /// Connections pending at once from one IPv4 address or IPv6 /64.
        var maxPendingPerSource: Int
        /// Unix milliseconds: hellos stamped earlier are refused, so that a hello recorded before this agent
        /// started (and so missing from its replay cache) is never answered.
        var notBefore: UInt64
        /// Balancers whose connections start with a PROXY v2 header naming the real peer.
        var trustedBalancers: TrustedBalancers = .none
    }

    /// Called on the gate thread with a connection whose handshake completed; it now belongs to the callee,
    /// blocking again, with the session keys it agreed and its peer (the client a trusted balancer named, or
    /// the connection's own peer).
    typealias Authenticated = @Sendable (Socket, SessionKeys, Endpoint) -> Void

    private let listening: ServedSocket
    private let configuration: Configuration
    private let metrics: AgentMetrics
    private let logger: Logger

    /// A gate for `listening`, which it owns from now on (and closes when it stops).
    init(listening: Socket, configuration: Configuration, metrics: AgentMetrics, logger: Logger) {
        self.listening = ServedSocket(listening)
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
    }

    /// Starts the gate thread, which hands each connection that authenticates to `onAuthenticated`. Call once.
    /// On failure the listening socket is closed.
    func start(onAuthenticated: @escaping Authenticated) throws(AgentError) {
        warnIfDescriptorsAreShort()
        listening.socket.setBlocking(false)
        let epoll: Epoll
        do {
            epoll = try Epoll()
            try epoll.watch(listening.socket.fd, token: GateLoop.listenerToken)
        } catch {
            listening.stop()
            throw .systemCall(error)
        }
        do {
            try listening.start(named: "handshakes") { [self] in
                var loop = GateLoop(gate: self, epoll: epoll, onAuthenticated: onAuthenticated)
                loop.run()
                epoll.close()
            }
        } catch {
            epoll.close()
            listening.stop()
            throw .resources(error)
        }
    }

    /// Says so at start when the process may open fewer descriptors than the pending table can hold: the gate
    /// then sheds when descriptors run out rather than at `--max-pending`.
    private func warnIfDescriptorsAreShort() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        let wanted = UInt64(configuration.maxPending) + Limits.descriptorHeadroom
        guard limit.rlim_cur < wanted else { return }
        let message =
            "the open-file limit (\(limit.rlim_cur)) is below --max-pending (\(configuration.maxPending)) plus "
            + "room for links and streams: under a flood, pending connections will be shed when descriptors "
            + "run out (raise LimitNOFILE= or ulimit -n)"
        logger.warning("\(message)")
    }

    /// Stops accepting, closes every pending connection and waits (briefly) for the gate thread. Idempotent.
    func stop() {
        listening.stop()
    }

    /// The gate thread's state and work. Created on that thread and never leaves it.
    private struct GateLoop {
        static let listenerToken = UInt64.max

        typealias Connection = PendingConnection

        let gate: HandshakeGate
        let epoll: Epoll
        let onAuthenticated: Authenticated
        var table: PendingTable
        var connections: [Int32: Connection] = [:]
        var replays = HelloReplayCache()
        var report: RejectionReport
        var generator = SystemRandomNumberGenerator()
        var lastSweep: UInt64 = 0
        /// Where input is read into, hellos and dropped bytes alike: one buffer for every connection.
        var buffer = [UInt8](repeating: 0, count: HandshakeMessage.maximumClientHelloSize)
        let failures = LogThrottle()

        init(gate: HandshakeGate, epoll: Epoll, onAuthenticated: @escaping Authenticated) {
            self.gate = gate
            self.epoll = epoll
            self.onAuthenticated = onAuthenticated
            table = PendingTable(
                capacity: gate.configuration.maxPending, capacityPerSource: gate.configuration.maxPendingPerSource)
            report = RejectionReport(interval: Limits.rejectionReportInterval)
        }

        mutating func run() {
            let events = UnsafeMutableBufferPointer<epoll_event>.allocate(capacity: 256)
            defer { events.deallocate() }
            var ready: [UInt64] = []
            while !gate.listening.isStopping {
                epoll.wait(into: &ready, events: events, timeoutMillis: timeoutMillis())
                // Connections first, so that those whose peers already left free their slots before new ones
                // are admitted.
                for token in ready where token != Self.listenerToken { service(Int32(truncatingIfNeeded: token)) }
                if ready.contains(Self.listenerToken) { acceptAll() }
                housekeep()
            }
            // Stopping: what was counted but not yet said is said now; the pending connections are closed
            // uncounted, as the agent's end, not a verdict on them.
            if let line = report.finalLine(now: MonotonicClock.nanoseconds(), pending: table.count) {
                gate.logger.warning("\(line)")
            }
            for connection in connections.values { connection.socket.close() }
            connections = [:]
            gate.metrics.handshakesPending.record(0)
        }

        /// Sleep until the next sweep or summary line is due, at most a second.
        private func timeoutMillis() -> Int32 {
            let now = MonotonicClock.nanoseconds()
            let sweepDue = table.count > 0 ? lastSweep + Limits.pendingSweepInterval : now + 1_000_000_000
            let due = min(sweepDue, report.nextLineDue ?? .max, now + 1_000_000_000)
            return Int32(due > now ? (due - now) / 1_000_000 + 1 : 0)
        }

        /// Closes connections past their deadline (at most every sweep interval, so a table of thousands is not
        /// scanned per event) and writes the summary line when it is due.
        private mutating func housekeep() {
            let now = MonotonicClock.nanoseconds()
            if now >= lastSweep + Limits.pendingSweepInterval {
                lastSweep = now
                for fd in table.expired(now: now) { close(fd, as: connections[fd]?.rejection ?? .silent) }
            }
            if let line = report.line(now: now, pending: table.count) { gate.logger.warning("\(line)") }
            gate.metrics.handshakesPending.record(table.count)
        }

        // MARK: Accepting

        /// Accepts what the kernel has queued, a bounded number per wake so pending connections are served too.
        private mutating func acceptAll() {
            for _ in 0..<Limits.acceptsPerWake {
                let accepted: (Socket, ResolvedAddress)?
                do {
                    accepted = try gate.listening.socket.acceptPending()
                } catch {
                    if gate.listening.isStopping { return }
                    guard error.code == EMFILE || error.code == ENFILE,
                        let victim = table.descriptors.randomElement(using: &generator)
                    else {
                        failures.log(gate.logger, level: .error, "accept on the link port failed: \(error)")
                        sleep(seconds: 0.01)  // the listening socket stays readable: do not spin on it
                        return
                    }
                    // Out of descriptors: a pending stranger gives up its descriptor for the next connection.
                    failures.log(
                        gate.logger, level: .warning, "out of descriptors (\(error)); shedding pending connections")
                    table.remove(victim)
                    shed(victim)
                    continue
                }
                guard let (socket, peer) = accepted else { return }
                admit(socket, from: peer)
            }
        }

        private mutating func admit(_ socket: Socket, from peer: ResolvedAddress) {
            let now = MonotonicClock.nanoseconds()
            let hold = gate.configuration.handshakeTimeout * Double.random(in: 0.5...1.5, using: &generator)
            let deadline = now + UInt64(hold * 1e9)
            do {
                try epoll.watch(socket.fd, token: UInt64(UInt32(bitPattern: socket.fd)))
            } catch {
                failures.log(gate.logger, level: .error, "cannot watch a new connection: \(error)")
                return socket.close()
            }
            // A trusted balancer's connections wait for their header as sources of their own, so that the
            // balancer's one address does not fill its per-source cap; the header then names the real source.
            let address = peer.addressBytes
            let isBalanced = gate.configuration.trustedBalancers.contains(address)
            let source =
                isBalanced ? ConnectionSource(awaitingHeaderOn: socket.fd) : ConnectionSource(addressBytes: address)
            if let shed = table.admit(socket.fd, from: source, now: now, deadline: deadline, using: &generator) {
                self.shed(shed)
            }
            connections[socket.fd] = Connection(
                socket: socket, peer: peer, proxyHeader: isBalanced ? ProxyHeaderReader() : nil)
        }

        // MARK: Reading hellos

        private mutating func service(_ fd: Int32) {
            guard var connection = connections[fd] else { return }
            // A rejected connection's input is dropped: up to a buffer's worth per wake.
            let wanted = connection.wanted(dropping: buffer.count)
            let result = buffer.withUnsafeMutableBytes { raw in
                Result { () throws(SocketError) in
                    try connection.socket.receive(into: UnsafeMutableRawBufferPointer(rebasing: raw[..<wanted]))
                }
            }
            let count: Int
            switch result {
            case .success(let received) where received > 0: count = received
            case .failure(let error) where error.isTimeout: return
            default:  // end of stream, or a reset: the peer gave up, or closed after its hello failed
                return close(fd, as: connection.reasonOnceThePeerLeft)
            }
            guard connection.rejection == nil else { return }
            if connection.proxyHeader != nil { return receiveProxyHeader(fd, connection, count: count) }
            let configuration = gate.configuration
            let progress = connection.hello.append(
                buffer[..<count], keys: configuration.keys, nowMillis: UnixClock.nowMillis(),
                notBefore: configuration.notBefore)
            switch progress {
            case .incomplete: connections[fd] = connection
            case .rejected(let reason, let detail): reject(fd, connection, as: reason, detail: detail)
            case .complete(let verified):
                guard replays.admit(verified.identity, nowMillis: UnixClock.nowMillis()) else {
                    return reject(fd, connection, as: .replayed, detail: "hello already answered")
                }
                answer(fd, connection, verified)
            }
        }

        /// Takes `count` bytes of a trusted balancer's PROXY v2 header; once it is whole, the client it names
        /// stands for the connection (and its per-source cap), and the hello follows.
        private mutating func receiveProxyHeader(_ fd: Int32, _ connection: Connection, count: Int) {
            var connection = connection
            switch connection.proxyHeader!.append(buffer[..<count]) {
            case .incomplete: connections[fd] = connection
            case .rejected(let reason): reject(fd, connection, as: .badProxyHeader, detail: reason)
            case .complete(let origin):
                connection.proxyHeader = nil
                connection.proxiedSource = origin?.source
                let named = origin.map { ConnectionSource(addressBytes: $0.source.bytes) }
                connections[fd] = connection
                if let shed = table.reassign(fd, to: named ?? ConnectionSource(connection.peer)) { self.shed(shed) }
            }
        }

        private mutating func answer(_ fd: Int32, _ connection: Connection, _ verified: VerifiedHello) {
            let response: (reply: [UInt8], keys: SessionKeys)
            do {
                response = try verified.respond()
            } catch .outOfGuardedMemory {
                failures.log(gate.logger, level: .error, "cannot answer a hello: \(CryptoError.outOfGuardedMemory)")
                return close(fd, as: .shed)
            } catch {
                return reject(fd, connection, as: .notAuthentic, detail: "\(error)")  // a weak ephemeral key
            }
            // A fresh connection's send buffer takes a hello whole; if it does not, the peer cannot be served.
            let sent = response.reply.withUnsafeBytes { raw in
                (try? connection.socket.sendAvailable(raw)) ?? -1
            }
            guard sent == response.reply.count else { return close(fd, as: .silent) }
            table.remove(fd)
            connections[fd] = nil
            epoll.forget(fd)
            connection.socket.setBlocking(true)
            onAuthenticated(connection.socket, response.keys, connection.peerEndpoint)
        }

        private mutating func reject(
            _ fd: Int32, _ connection: Connection, as reason: HandshakeRejection, detail: String
        ) {
            var connection = connection
            connection.rejection = reason
            connection.hello = PendingHello()  // a failed hello keeps no buffer while it is held
            connection.proxyHeader = nil
            connections[fd] = connection
            gate.logger.debug("connection from \(connection.peerEndpoint) refused (\(reason)): \(detail)")
        }

        // MARK: Closing

        /// Closes a pending connection and counts why.
        private mutating func close(_ fd: Int32, as reason: HandshakeRejection) {
            table.remove(fd)
            finish(fd, as: reason)
        }

        /// Closes a connection already out of the table to make room. One whose peer has already gone (a
        /// connect-and-close flood's) is counted for what it was, so that "shed" counts only live connections.
        private mutating func shed(_ fd: Int32) {
            guard let connection = connections[fd] else { return }
            finish(fd, as: connection.socket.hasPeerLeft ? connection.reasonOnceThePeerLeft : .shed)
        }

        /// Closes a connection already out of the table and counts why.
        private mutating func finish(_ fd: Int32, as reason: HandshakeRejection) {
            guard let connection = connections.removeValue(forKey: fd) else { return }
            // Counted before the close, so whoever sees the close also sees the count.
            report.record(reason)
            gate.metrics.recordRejection(reason)
            if reason == .closedWithoutData || reason == .shed {
                gate.logger.debug("connection from \(connection.peerEndpoint) closed: \(reason)")
            }
            connection.socket.close()
        }
    }
}
