import Logging

/// What the remote agent knows of its cover: the addresses strangers are relayed to, and how the cover answers
/// a browser's hello, per server name. Learned at start (`learnAtStart`, which fails if the cover cannot be used)
/// and kept fresh by one thread of its own (`start`): every `Limits.coverRefreshInterval`, and at once for a
/// server name an authentic hello brings that has not been asked yet (at most `Limits.maxCoverNames`).
///
/// Threads: the refresh thread alone probes and writes `state`; the handshake thread reads it (`shape(for:)`,
/// `addresses`), never waiting on a probe. `state` is guarded by `condition`.
final class CoverShapes: @unchecked Sendable {  // `state` is guarded by `condition`; the rest is immutable
    /// The cover as configured.
    let cover: Endpoint
    private let connectTimeout: Double
    private let logger: Logger
    private let condition = MonotonicCondition()
    private let stopped = Completion()

    private struct State {
        var addresses: [ResolvedAddress] = []
        /// The shape learned at start, for a name not learned yet.
        var initial: CoverShape?
        var byName: [String: CoverShape] = [:]
        /// Names an authentic hello brought, waiting for the refresh thread.
        var wanted: Set<String> = []
        var isStopping = false
        var isRunning = false
    }
    private var state = State()

    init(cover: Endpoint, connectTimeout: Double, logger: Logger) {
        self.cover = cover
        self.connectTimeout = connectTimeout
        self.logger = logger
    }

    /// The server name the start probe uses: the cover's own host name, none for an address.
    private var coverName: String? { ResolvedAddress(literal: cover.host, port: cover.port) == nil ? cover.host : nil }

    /// Resolves the cover and learns its answer, before the agent takes connections; throws why it cannot be
    /// used as a cover (unreachable, not TLS 1.3, a group the transport cannot answer with).
    func learnAtStart() throws(CoverProbe.Failure) -> CoverShape {
        let addresses: [ResolvedAddress]
        do {
            addresses = try cover.resolve()
        } catch {
            throw .unresolvable(error)
        }
        let shape = try CoverProbe.learn(from: addresses, serverName: coverName, timeout: connectTimeout)
        locked { state in
            state.addresses = addresses
            state.initial = shape
            if let name = coverName { state.byName[name] = shape }
        }
        return shape
    }

    /// Starts the refresh thread. Call after `learnAtStart`.
    func start() throws(ThreadError) {
        locked { $0.isRunning = true }
        try startThread(named: "cover-probe") { [self] in
            refreshUntilStopped()
            stopped.complete()
        }
    }

    /// Stops the refresh thread, waiting up to a probe's time for it (at once when it is not probing).
    func stop() {
        let isRunning = locked { state in
            state.isStopping = true
            condition.signal()
            return state.isRunning
        }
        if isRunning { stopped.wait(seconds: 2 * connectTimeout + 1) }
    }

    /// Where strangers' connections are relayed: the cover's addresses as last resolved.
    var addresses: [ResolvedAddress] { locked { $0.addresses } }

    /// The shape to answer a hello naming `serverName` with: that name's own once learned, else the one learned
    /// at start, while the refresh thread is asked to learn the name's own.
    func shape(for serverName: String?) -> CoverShape {
        locked { state in
            if let serverName, let shape = state.byName[serverName] { return shape }
            if let serverName, state.byName.count + state.wanted.count < Limits.maxCoverNames {
                state.wanted.insert(serverName)
                condition.signal()
            }
            return state.initial!
        }
    }

    private func locked<R>(_ body: (inout State) -> R) -> R {
        condition.lock()
        defer { condition.unlock() }
        return body(&state)
    }

    private func refreshUntilStopped() {
        var nextRefresh = ContinuousClock.now + .seconds(Limits.coverRefreshInterval)
        while true {
            condition.lock()
            while !state.isStopping && state.wanted.isEmpty && condition.wait(until: nextRefresh) {}
            let isStopping = state.isStopping
            let isDue = ContinuousClock.now >= nextRefresh
            let names = isDue ? Array(state.byName.keys) + state.wanted : Array(state.wanted)
            condition.unlock()
            if isStopping { return }
            if isDue {
                nextRefresh = .now + .seconds(Limits.coverRefreshInterval)
                refreshAddresses()
                if coverName == nil { refresh(name: nil) }
            }
            for name in Set(names) { refresh(name: name) }
        }
    }

    private func refreshAddresses() {
        do {
            let addresses = try cover.resolve()
            locked { $0.addresses = addresses }
        } catch {
            logger.warning("cover \(cover): \(error); relaying to the addresses it had")
        }
    }

    /// Learns the cover's answer for `name` again; on failure keeps the shape it had, which stays the best guess.
    private func refresh(name: String?) {
        let addresses = self.addresses
        do {
            let shape = try CoverProbe.learn(from: addresses, serverName: name, timeout: connectTimeout)
            locked { state in
                state.wanted.remove(name ?? "")
                if let name { state.byName[name] = shape } else { state.initial = shape }
            }
        } catch {
            locked { state in
                if let name, state.wanted.remove(name) != nil, state.byName[name] == nil {
                    state.byName[name] = state.initial  // asked once; the start shape answers it until the next refresh
                }
            }
            logger.warning(
                "cannot learn how the cover \(cover) answers \(name.map { "'\($0)'" } ?? "a hello without a name"): \(error); answering in the shape it had"
            )
        }
    }
}
