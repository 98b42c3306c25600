import CLinux
import CoreMetrics
import Crypto
import Glibc
import Logging

/// The handshake thread's state and work (`HandshakeGate`): accepting, reading hellos
/// (`GateLoop+Hellos.swift`), relaying strangers to the cover (`GateLoop+Relays.swift`), closing. Created on
/// that thread and never leaves it.
struct GateLoop {
    static let listenerToken = UInt64.max

    let gate: HandshakeGate
    let epoll: Epoll
    let onAuthenticated: HandshakeGate.Authenticated
    var table: PendingTable
    var connections: [Int32: PendingConnection] = [:]
    /// TLS transport: the pending connection (its descriptor) each cover connection started at accept is for.
    var pendingOfCover: [Int32: Int32] = [:]
    var relays = CoverRelays()
    var replays = HelloReplayCache()
    var report: RejectionReport
    var generator = SystemRandomNumberGenerator()
    var lastSweep: UInt64 = 0
    /// Where hellos and dropped bytes are read into: one buffer for every pending connection.
    var buffer = [UInt8](repeating: 0, count: max(HandshakeMessage.maximumClientHelloSize, Limits.maxTLSClientHello))
    /// Where relayed bytes are read into: one buffer for every relay.
    var relayBuffer = [UInt8](repeating: 0, count: Limits.coverRelayBacklog)
    let failures = LogThrottle()

    init(gate: HandshakeGate, epoll: Epoll, onAuthenticated: @escaping HandshakeGate.Authenticated) {
        self.gate = gate
        self.epoll = epoll
        self.onAuthenticated = onAuthenticated
        table = PendingTable(
            capacity: gate.configuration.maxPending, capacityPerSource: gate.configuration.maxPendingPerSource)
        report = RejectionReport(
            interval: Limits.rejectionReportInterval, relaysToCover: gate.configuration.cover != nil)
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
        // Stopping: what was counted but not yet said is said now; the pending connections and relays are
        // closed uncounted, as the agent's end, not a verdict on them.
        if let line = report.finalLine(now: MonotonicClock.nanoseconds(), pending: table.count) {
            gate.logger.warning("\(line)")
        }
        for connection in connections.values { connection.close() }
        connections = [:]
        pendingOfCover = [:]
        relays.closeAll()
        gate.metrics.handshakesPending.record(0)
        gate.metrics.coverRelays.record(0)
    }

    /// Sleep until the next sweep or summary line is due, at most a second.
    private func timeoutMillis() -> Int32 {
        let now = MonotonicClock.nanoseconds()
        let isSweeping = table.count > 0 || relays.count > 0
        let sweepDue = isSweeping ? lastSweep + Limits.pendingSweepInterval : now + 1_000_000_000
        let due = min(sweepDue, report.nextLineDue ?? .max, now + 1_000_000_000)
        return Int32(due > now ? (due - now) / 1_000_000 + 1 : 0)
    }

    /// Ends connections past their deadline and idle relays (at most every sweep interval, so a table of
    /// thousands is not scanned per event) and writes the summary line when it is due.
    private mutating func housekeep() {
        let now = MonotonicClock.nanoseconds()
        if now >= lastSweep + Limits.pendingSweepInterval {
            lastSweep = now
            for fd in table.expired(now: now) { expire(fd) }
            for fd in relays.idle(now: now) { endRelay(fd, abort: false) }
        }
        if let line = report.line(now: now, pending: table.count) { gate.logger.warning("\(line)") }
        gate.metrics.handshakesPending.record(table.count)
    }

    /// A pending connection's deadline passed: with the native transport it is closed; with the TLS transport
    /// it goes to the cover with what it sent, where the cover's own timeouts apply.
    private mutating func expire(_ fd: Int32) {
        guard let connection = connections[fd] else { return }
        let reason = connection.rejection ?? .silent
        if connection.canGoToCover {
            relay(fd, connection, as: reason, detail: "no hello before its deadline")
        } else {
            close(fd, as: reason)
        }
    }

    /// Serves the descriptor `fd`, which epoll says is ready: a pending connection, the cover connection of one,
    /// or a side of a relay.
    private mutating func service(_ fd: Int32) {
        if connections[fd] != nil { return receive(fd) }
        if let pending = pendingOfCover[fd], let connection = connections[pending] {
            return coverActed(for: pending, connection)
        }
        serveRelay(fd)
    }

    /// The cover connection started for pending `connection` has news before its hello is complete. If the
    /// connect failed, that connection goes on without one (a relay connects again), so that a cover that is
    /// down never costs a local agent its link. If the cover spoke or closed, the stranger gets that at once.
    private mutating func coverActed(for fd: Int32, _ connection: PendingConnection) {
        guard case .tls(let hello, let cover?) = connection.opening else { return }
        if cover.connectionError != nil {
            var connection = connection
            forgetCover(of: connection)
            cover.close()
            connection.opening = .tls(hello, cover: nil)
            connections[fd] = connection
            return
        }
        guard connection.canGoToCover else { return close(fd, as: .silent) }
        relay(fd, connection, as: .silent, detail: "the cover answered before a hello")
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
                shed(victim, forDescriptor: true)
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
        let opening: PendingConnection.Opening =
            gate.configuration.cover == nil
            ? .native(PendingHello()) : .tls(PendingTLSHello(), cover: watchedCoverConnection(for: socket.fd))
        connections[socket.fd] = PendingConnection(
            socket: socket, peer: peer, proxyHeader: isBalanced ? ProxyHeaderReader() : nil, opening: opening)
    }

    /// A connection to the cover, started and not awaited; `nil` if it failed at once (the relay tries again).
    func connectCover() -> Socket? {
        guard let address = gate.configuration.cover?.addresses.first else { return nil }
        return try? Socket.startConnect(to: address)
    }

    /// A connection to the cover for pending connection `fd`, watched for input so that the cover's own
    /// answers (a close at its timeout, say) reach the stranger when they happen, not at our deadline.
    private mutating func watchedCoverConnection(for fd: Int32) -> Socket? {
        guard let cover = connectCover() else { return nil }
        do {
            try epoll.watch(cover.fd, token: CoverRelays.token(cover.fd))
        } catch {
            cover.close()
            return nil
        }
        pendingOfCover[cover.fd] = fd
        return cover
    }

    // MARK: Closing

    /// Closes a pending connection and counts why.
    mutating func close(_ fd: Int32, as reason: HandshakeRejection) {
        table.remove(fd)
        finish(fd, as: reason)
    }

    /// Ends a connection already out of the table to make room. One whose peer has already gone (a
    /// connect-and-close flood's) is counted for what it was, so that "shed" counts only live connections. With
    /// the TLS transport a live one goes to the cover, as a real site would have served it, unless the room
    /// wanted is `forDescriptor`: then it is closed.
    mutating func shed(_ fd: Int32, forDescriptor: Bool = false) {
        guard let connection = connections[fd] else { return }
        if connection.socket.hasPeerLeft { return finish(fd, as: connection.reasonOnceThePeerLeft) }
        if connection.canGoToCover && !forDescriptor {
            return relay(fd, connection, as: .shed, detail: "shed to make room")
        }
        finish(fd, as: .shed)
    }

    /// Closes a connection already out of the table and counts why.
    private mutating func finish(_ fd: Int32, as reason: HandshakeRejection) {
        guard let connection = connections.removeValue(forKey: fd) else { return }
        forgetCover(of: connection)
        count(reason)
        if reason == .closedWithoutData || reason == .shed {
            gate.logger.debug("connection from \(connection.peerEndpoint) closed: \(reason)")
        }
        connection.close()
    }

    /// Takes the cover connection started for pending `connection`, if any, out of the map and out of epoll; the
    /// caller closes it or hands it on.
    mutating func forgetCover(of connection: PendingConnection) {
        guard case .tls(_, let cover?) = connection.opening else { return }
        pendingOfCover[cover.fd] = nil
        epoll.forget(cover.fd)
    }

    /// Counts a connection turned away for `reason`, before it is closed or relayed, so whoever sees that also
    /// sees the count.
    mutating func count(_ reason: HandshakeRejection) {
        report.record(reason)
        gate.metrics.recordRejection(reason)
    }
}
