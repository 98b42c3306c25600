import Crypto
import Foundation
import Logging

/// The client-facing end of the tunnel: accepts TCP clients and carries each one as a stream over one
/// persistent, encrypted link to the remote agent, re-establishing the link whenever it fails.
///
/// Threads: one accept thread; one link supervisor thread that connects and reconnects; per client, a thread
/// that waits for the link and then becomes its stream's uplink thread (see `Stream`).
/// `@unchecked Sendable`: immutable configuration plus `link` and `isStopping`, guarded by `linkChanged`.
public final class LocalAgent: @unchecked Sendable {
    /// The address clients connect to.
    public var listeningEndpoint: Endpoint { listener.endpoint }

    private let listener: Listener
    private let remote: Endpoint
    private let key: PreSharedKey
    private let settings: TunnelSettings
    private let logger: Logger
    private let limiter: StreamLimiter
    private let refusals = LogThrottle()
    private let linkChanged = NSCondition()
    /// The link new clients use; `nil` while there is none that takes new streams.
    private var link: Link?
    private var isStopping = false
    private let stopRequested = Completion()

    /// Binds `listen` now (so a port in use fails here) and validates `settings`. Nothing runs until `start()`.
    public init(
        listen: Endpoint, remote: Endpoint, key: PreSharedKey, settings: TunnelSettings, logger: Logger
    ) throws(AgentError) {
        do {
            try settings.validate()
        } catch {
            throw .invalidSettings(error)
        }
        listener = try Listener(endpoint: listen)
        self.remote = remote
        self.key = key
        self.settings = settings
        self.logger = logger
        limiter = StreamLimiter(limit: settings.maxStreams)
    }

    /// Starts accepting clients and connecting the link. Returns at once.
    public func start() throws(AgentError) {
        do {
            try startThread(named: "link-supervisor") { self.superviseLink() }
            try listener.start(logger: logger) { client in self.admit(client) }
        } catch {
            stopRequested.complete()
            throw .resources(error)
        }
        logger.info(
            "local agent listening on \(listener.endpoint), tunnelling to \(remote) (key \(key.fingerprint))")
    }

    /// Stops accepting, lets streams in flight finish for up to the drain timeout, then resets the rest and
    /// closes the link cleanly (GOAWAY).
    public func stop() {
        linkChanged.lock()
        isStopping = true
        let link = self.link
        linkChanged.broadcast()
        linkChanged.unlock()
        stopRequested.complete()
        listener.stop()
        guard let link else { return }
        link.beginDrain()
        let open = link.streamCount
        if open > 0 { logger.info("letting \(open) streams finish (up to \(Int(settings.drainTimeout)) s)") }
        if !link.waitUntilDrained(deadline: Date(timeIntervalSinceNow: settings.drainTimeout)) {
            logger.warning("drain timeout: resetting \(link.streamCount) streams")
        }
        link.finishDrain(waitingUpTo: 2)
    }

    /// Whether a link that takes new streams is up now.
    public var isLinkUp: Bool {
        linkChanged.lock()
        defer { linkChanged.unlock() }
        return link?.isOpenForStreams ?? false
    }

    /// Streams running now.
    public var streamCount: Int { limiter.openCount }

    /// Clients refused because `maxStreams` streams were running.
    public var refusedCount: Int { limiter.refusedCount }

    // MARK: The link supervisor thread

    private func superviseLink() {
        var delay = Backoff.initialDelay
        while !stopRequested.hasCompleted {
            do {
                let link = try Link.connect(
                    to: remote, key: key, settings: settings, limiter: limiter, logger: logger
                ) { [logger, remote] _, reason in
                    logger.log(level: reason.isPlanned ? .info : .warning, "link to \(remote) down: \(reason)")
                }
                guard publish(link) else {
                    link.close(.localShutdown)
                    return
                }
                logger.info("link up to \(remote)")
                delay = Backoff.initialDelay
                while !link.stoppedOpening.wait(seconds: 3600) {}
                _ = publish(nil)
                // A draining link (the remote agent is stopping) finishes its streams on its own; connect the
                // next one at once for new clients.
                if !link.isClosed { continue }
            } catch {
                logger.warning("cannot establish link to \(remote): \(error); retrying in \(Backoff.format(delay))")
            }
            if stopRequested.wait(seconds: Backoff.jittered(delay)) { return }
            delay = Backoff.next(after: delay)
        }
    }

    /// Makes `link` the one new clients use and wakes waiting clients. Returns `false` if the agent is stopping.
    private func publish(_ link: Link?) -> Bool {
        linkChanged.lock()
        defer { linkChanged.unlock() }
        guard !isStopping else { return false }
        self.link = link
        linkChanged.broadcast()
        return true
    }

    // MARK: Client threads

    /// Runs on the accept thread, so it must not block: takes a stream slot and hands the client to a thread.
    private func admit(_ client: Socket) {
        guard limiter.tryAcquire() else {
            refusals.log(
                logger, level: .warning,
                "refused client \(client.peerEndpoint): \(limiter.limit) streams open (--max-streams); "
                    + "\(limiter.refusedCount) refused since start")
            return refuse(client)
        }
        do {
            try startThread(named: "client") { self.serve(client) }
        } catch {
            limiter.release()
            refusals.log(logger, level: .error, "refused client \(client.peerEndpoint): \(error)")
            refuse(client)
        }
    }

    private func serve(_ client: Socket) {
        guard let link = awaitLink() else {
            logger.warning(
                "closing client \(client.peerEndpoint): no link to \(remote) within \(Int(settings.linkWaitTimeout)) s")
            limiter.release()
            return refuse(client)
        }
        guard let stream = link.openStream(socket: client) else {
            limiter.release()
            return refuse(client)
        }
        if stream.awaitEstablished() {
            stream.run()
        } else {
            stream.abandon()
        }
    }

    /// Closes a client we will not serve with RST, so it fails at once instead of reading an empty reply.
    private func refuse(_ client: Socket) {
        client.setAbortOnClose()
        client.close()
    }

    /// Waits up to the link-wait timeout for a link that takes new streams.
    private func awaitLink() -> Link? {
        let deadline = Date(timeIntervalSinceNow: settings.linkWaitTimeout)
        linkChanged.lock()
        defer { linkChanged.unlock() }
        while !isStopping {
            if let link, link.isOpenForStreams { return link }
            if !linkChanged.wait(until: deadline) { break }
        }
        return nil
    }
}

/// Capped exponential backoff with jitter for reconnect attempts, so that many local agents cut off by the same
/// outage do not reconnect in lockstep.
enum Backoff {
    static let initialDelay = 0.25
    static let maximumDelay = 30.0

    static func next(after delay: Double) -> Double { min(delay * 2, maximumDelay) }

    /// `delay` spread uniformly over ±25 %.
    static func jittered(_ delay: Double) -> Double { delay * Double.random(in: 0.75...1.25) }

    static func format(_ delay: Double) -> String {
        delay < 1 ? "\(Int(delay * 1000)) ms" : "\(Int(delay)) s"
    }
}
