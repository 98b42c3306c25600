import Glibc
import Logging

/// The ports a remote agent listens on for its links' reverse forwards (`-R`, TCP or UDP): each bound for one link
/// only, within the `--allow-listen` rules, and released when that link goes down.
///
/// It also remembers the LISTENs its rules refused, so that a reload whose rules allow one binds it for the link
/// that asked without waiting for its local agent to ask again (docs/PROTOCOL.md §6.1).
///
/// `@unchecked Sendable`: `ruleSet`, `entries` and `refusals` are each guarded by their `Locked`; links and sockets
/// are Sendable. `entries`' lock may take `ruleSet`'s inside it, never the other way round.
final class ReverseListeners: @unchecked Sendable {
    private struct Entry {
        let link: Link
        let forward: UInt32
        let socket: ForwardSocket
    }

    /// A port and what it carries: TCP and UDP may each have the same port number, for different forwards.
    private struct Key: Hashable {
        let address: Endpoint
        let kind: TrafficKind
    }

    /// How a bound port is served.
    enum Service: Sendable {
        /// TCP: each client is handed to `onClient` on the accept thread, which must not block.
        case stream(onClient: @Sendable (Socket) -> Void)
        /// UDP: `forwarder` binds the port and serves it.
        case datagrams(forwarder: @Sendable (Endpoint) throws(ListenError) -> UDPForwarder)

        var kind: TrafficKind {
            if case .stream = self { .tcp } else { .udp }
        }
    }

    private let ruleSet: Locked<[ListenRule]>
    private let entries = Locked<[Key: Entry]>([:])
    private let refusals = Locked<[Refusal]>([])

    /// A LISTEN the rules refused: which link asked, for which of its forwards, and what.
    struct Refusal {
        let link: Link
        let forward: UInt32
        let address: Endpoint
        let kind: TrafficKind
    }

    init(rules: [ListenRule]) {
        ruleSet = Locked(rules)
    }

    /// The rules in force.
    var rules: [ListenRule] { ruleSet.withLock { $0 } }

    /// What a LISTEN request got, and the verdict in words for the log.
    struct Outcome {
        let result: ListenResult
        let port: UInt16
        let verdict: String
        /// The link that held the address while its session waited to resume, and its port, no longer listed:
        /// the requester's local agent most likely restarted. The caller ends that session, stops the port, and
        /// asks again, which then binds the address for the requester.
        var waitingHolder: (link: Link, socket: ForwardSocket)? = nil
    }

    /// Listens on `address` for `link`'s reverse forward `forward`, served as `service` says. Binding is a few
    /// system calls, so this may run on the link's reader.
    func bind(_ address: Endpoint, forward: UInt32, for link: Link, logger: Logger, service: Service) -> Outcome {
        let kind = service.kind
        guard IPNetwork.bytes(of: address.host) != nil else {
            return Outcome(result: .notAllowed, port: 0, verdict: "not allowed: the bind address must be an IP address")
        }
        let rules = self.rules
        guard let rule = rules.first(where: { $0.allows(address, kind: kind) }) else {
            refusals.withLock { refusals in
                refusals.removeAll { $0.link === link && $0.forward == forward }
                refusals.append(Refusal(link: link, forward: forward, address: address, kind: kind))
            }
            let verdict =
                rules.isEmpty
                ? "not allowed: this agent has no --allow-listen rule"
                : "not allowed: no --allow-listen rule covers it for \(kind.rawValue.uppercased()) (rules: \(rules.map(\.description).joined(separator: ", ")))"
            return Outcome(result: .notAllowed, port: 0, verdict: verdict)
        }
        let canonical = Endpoint(host: WireHost(address.host)!.text, port: address.port)
        let key = Key(address: canonical, kind: kind)
        return entries.withLock { entries in
            // Under the lock `release(for:)` and `update(rules:)` take: a link that ended meanwhile gets no port
            // it would hold for ever, and rules replaced meanwhile are the ones that count.
            guard !link.isClosed else { return Outcome(result: .failed, port: 0, verdict: "its link has ended") }
            guard self.rules.contains(where: { $0.allows(address, kind: kind) }) else {
                return Outcome(result: .notAllowed, port: 0, verdict: "not allowed: the rules changed meanwhile")
            }
            if let entry = entries[key] {
                guard entry.link === link, entry.forward == forward else {
                    guard entry.link.isDetached else {
                        return Outcome(result: .addressInUse, port: 0, verdict: "address in use by another link")
                    }
                    entries[key] = nil
                    return Outcome(
                        result: .addressInUse, port: 0,
                        verdict: "address held by \(entry.link.name), whose session waits to resume; ending it",
                        waitingHolder: (entry.link, entry.socket))
                }
                return Outcome(result: .bound, port: address.port, verdict: "already bound for this link")
            }
            let socket: ForwardSocket
            do throws(ListenError) {
                switch service {
                case .stream: socket = .stream(try Listener(endpoint: canonical))
                case .datagrams(let forwarder): socket = .datagrams(try forwarder(canonical))
                }
            } catch .cannotListen(_, let cause) where cause.code == EADDRINUSE {
                return Outcome(result: .addressInUse, port: 0, verdict: "address in use by another program")
            } catch {
                return Outcome(result: .failed, port: 0, verdict: "\(error)")
            }
            do {
                switch (socket, service) {
                case (.stream(let listener), .stream(let onClient)):
                    try listener.start(logger: logger, handle: onClient)
                case (.datagrams(let forwarder), _): try forwarder.start()
                case (.stream, .datagrams): preconditionFailure("a TCP listener made for a UDP service")
                }
            } catch {
                socket.stop()
                return Outcome(result: .failed, port: 0, verdict: "\(error)")
            }
            entries[key] = Entry(link: link, forward: forward, socket: socket)
            return Outcome(result: .bound, port: socket.endpoint.port, verdict: "allowed by rule \(rule)")
        }
    }

    /// Stops listening on every port bound for `link`, or only for its reverse forward `forward`; returns the
    /// addresses released. Never blocks, so that the link's threads may call it: each accept thread closes its
    /// port soon after.
    @discardableResult
    func release(for link: Link, forward: UInt32? = nil) -> [Endpoint] {
        refusals.withLock { $0.removeAll { $0.link === link && (forward == nil || $0.forward == forward) } }
        return stop(waiting: false) { $1.link === link && (forward == nil || $1.forward == forward) }.keys.map(
            \.address)
    }

    /// Replaces the rules (a reload). Ports the new rules do not cover stop listening; returns them, with the
    /// link and reverse forward each was bound for, and the refused LISTENs the new rules allow, forgotten here,
    /// for the caller to bind.
    func update(rules newRules: [ListenRule]) -> (
        stopped: [(address: Endpoint, link: Link, forward: UInt32)], allowed: [Refusal]
    ) {
        ruleSet.withLock { $0 = newRules }
        let allowed = refusals.withLock { refusals in
            let allowed = refusals.filter { refusal in
                newRules.contains { $0.allows(refusal.address, kind: refusal.kind) }
            }
            refusals.removeAll { refusal in newRules.contains { $0.allows(refusal.address, kind: refusal.kind) } }
            return allowed
        }
        let stopped = stop(waiting: true) { key, _ in !newRules.contains { $0.allows(key.address, kind: key.kind) } }
        // Refused now like any LISTEN the rules do not cover, so that a later reload that covers them binds them.
        refusals.withLock { refusals in
            for (key, entry) in stopped {
                refusals.append(Refusal(link: entry.link, forward: entry.forward, address: key.address, kind: key.kind))
            }
        }
        return (stopped.map { ($0.key.address, $0.value.link, $0.value.forward) }, allowed)
    }

    /// Removes and stops the listeners `matching` selects; `waiting` until each has closed its port, or not
    /// (on a link's threads, which must not block).
    private func stop(waiting: Bool, matching: (Key, Entry) -> Bool) -> [Key: Entry] {
        let stopped = entries.withLock { entries in
            let selected = entries.filter { matching($0.key, $0.value) }
            for key in selected.keys { entries[key] = nil }
            return selected
        }
        for entry in stopped.values {
            if waiting { entry.socket.stop() } else { entry.socket.requestStop() }
        }
        return stopped
    }

    /// Stops every listener, and forgets every refusal.
    func releaseAll() {
        refusals.withLock { $0.removeAll() }
        _ = stop(waiting: true) { _, _ in true }
    }
}
