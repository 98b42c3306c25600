import Crypto
import Foundation
import Logging

/// The server-facing end of the tunnel: accepts encrypted links from local agents and, for each stream they
/// open, connects to the target and relays bytes both ways.
///
/// Threads: one accept thread; one handshake thread per incoming connection, which becomes nothing once its
/// link runs (the link has its own reader and writer threads); per stream, a thread that connects to the target
/// and then serves as the stream's uplink thread (see `Stream`).
/// `@unchecked Sendable`: immutable configuration plus `links`, a `Locked` set.
public final class RemoteAgent: @unchecked Sendable {
    /// The address local agents connect to.
    public var listeningEndpoint: Endpoint { listener.endpoint }

    private let listener: Listener
    private let target: Endpoint
    private let keys: [PreSharedKey]
    private let settings: TunnelSettings
    private let logger: Logger
    private let links = Locked<[ObjectIdentifier: Link]>([:])
    private let limiter: StreamLimiter
    private let failures = LogThrottle()
    private let replays = Locked(HelloReplayCache())
    private let pendingHandshakes = Locked(0)

    /// Binds `listen` now (so a port in use fails here) and validates `settings`. Nothing runs until `start()`.
    /// `keys` holds the key local agents use, or two keys while they move from one to the other (rotation).
    public init(
        listen: Endpoint, target: Endpoint, keys: [PreSharedKey], settings: TunnelSettings, logger: Logger
    ) throws(AgentError) {
        precondition(!keys.isEmpty, "a remote agent needs a key")
        do {
            try settings.validate()
        } catch {
            throw .invalidSettings(error)
        }
        listener = try Listener(endpoint: listen)
        self.target = target
        self.keys = keys
        self.settings = settings
        self.logger = logger
        limiter = StreamLimiter(limit: settings.maxStreams)
    }

    /// Starts accepting links. Returns at once.
    public func start() throws(AgentError) {
        do {
            try listener.start(logger: logger) { connection in self.admit(connection) }
        } catch {
            throw .resources(error)
        }
        let fingerprints = keys.map(\.fingerprint).joined(separator: ", ")
        logger.info(
            "remote agent listening on \(listener.endpoint), forwarding to \(target) (\(keys.count == 1 ? "key" : "keys") \(fingerprints))"
        )
    }

    /// Stops accepting links, tells every local agent to open no more streams (GOAWAY), lets streams in flight
    /// finish for up to the drain timeout, then resets the rest and closes the links.
    public func stop() {
        listener.stop()
        let current = links.withLock { Array($0.values) }
        for link in current { link.beginDrain() }
        let open = current.reduce(0) { $0 + $1.streamCount }
        if open > 0 { logger.info("letting \(open) streams finish (up to \(Int(settings.drainTimeout)) s)") }
        let deadline = Date(timeIntervalSinceNow: settings.drainTimeout)
        let unfinished = current.filter { !$0.waitUntilDrained(deadline: deadline) }
        if !unfinished.isEmpty {
            logger.warning("drain timeout: resetting \(unfinished.reduce(0) { $0 + $1.streamCount }) streams")
        }
        for link in current { link.finishDrain(waitingUpTo: 2) }
    }

    /// The number of links up now.
    public var linkCount: Int { links.withLock { $0.count } }

    /// Streams running now, across all links.
    public var streamCount: Int { limiter.openCount }

    /// Streams refused because `maxStreams` streams were running.
    public var refusedCount: Int { limiter.refusedCount }

    /// Runs on the accept thread, so it must not block: hands the connection to a handshake thread.
    private func admit(_ connection: Socket) {
        let isAdmitted = pendingHandshakes.withLock { pending in
            guard pending < Limits.maxPendingHandshakes else { return false }
            pending += 1
            return true
        }
        guard isAdmitted else {
            failures.log(
                logger, level: .warning,
                "closing connection from \(connection.peerEndpoint): \(Limits.maxPendingHandshakes) handshakes pending")
            return connection.close()
        }
        do {
            try startThread(named: "handshake") {
                self.establishLink(connection)
                self.pendingHandshakes.withLock { $0 -= 1 }
            }
        } catch {
            pendingHandshakes.withLock { $0 -= 1 }
            failures.log(logger, level: .error, "closing connection from \(connection.peerEndpoint): \(error)")
            connection.close()
        }
    }

    private func establishLink(_ connection: Socket) {
        let peer = connection.peerEndpoint
        let linkLogger = logger.withMetadata("link", "\(peer)")
        do {
            let link = try Link.accept(
                connection, keys: keys, replays: replays, settings: settings, limiter: limiter, logger: linkLogger,
                onOpen: { [self] stream in startServing(stream) },
                onClose: { [links, logger] link, reason in
                    logger.log(level: reason.isPlanned ? .info : .warning, "link from \(peer) down: \(reason)")
                    _ = links.withLock { $0.removeValue(forKey: ObjectIdentifier(link)) }
                })
            links.withLock { $0[ObjectIdentifier(link)] = link }
            if link.isClosed { links.withLock { $0[ObjectIdentifier(link)] = nil } }
            logger.info("link up from \(peer)")
        } catch {
            logger.warning("rejected connection from \(peer): \(error)")
        }
    }

    /// Runs on the link's reader thread, so it must not block: gives the stream a thread of its own.
    private func startServing(_ stream: Stream) {
        do {
            try startThread(named: "stream-\(stream.id)-up") { self.serve(stream) }
        } catch {
            failures.log(logger, level: .error, "resetting stream \(stream.id): \(error)")
            stream.abort(sending: .aborted)
            stream.abandon()
        }
    }

    /// Runs on the stream's own thread: connects to the target, then relays until the stream ends.
    private func serve(_ stream: Stream) {
        do throws(SocketError) {
            let addresses: [ResolvedAddress]
            do {
                addresses = try target.resolve()
            } catch {
                logger.warning("cannot resolve target: \(error)")
                stream.abort(sending: .targetUnreachable)
                stream.abandon()
                return
            }
            let socket = try Socket.connect(to: addresses, timeout: settings.connectTimeout)
            socket.setNoDelay()
            if stream.attach(socket) {
                stream.run()
            } else {
                stream.abandon()
            }
        } catch {
            logger.warning("stream \(stream.id): cannot connect to target \(target): \(error)")
            stream.abort(sending: error.code == ECONNREFUSED ? .targetRefused : .targetUnreachable)
            stream.abandon()
        }
    }
}

extension Logger {
    /// A copy of this logger with one more metadata entry.
    func withMetadata(_ key: String, _ value: String) -> Logger {
        var copy = self
        copy[metadataKey: key] = "\(value)"
        return copy
    }
}
