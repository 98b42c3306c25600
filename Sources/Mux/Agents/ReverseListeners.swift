import Glibc
import Logging

/// The ports a remote agent listens on for its links' reverse forwards (`-R`): each bound for one link only,
/// within the `--allow-listen` rules, and released when that link goes down.
///
/// `@unchecked Sendable`: `ruleSet` and `entries` are each guarded by their `Locked`; links and listeners are Sendable.
final class ReverseListeners: @unchecked Sendable {
    private struct Entry {
        let link: Link
        let forward: UInt32
        let listener: Listener
    }

    private let ruleSet: Locked<[ListenRule]>
    private let entries = Locked<[Endpoint: Entry]>([:])

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
    }

    /// Listens on `address` for `link`'s reverse forward `forward`, calling `onClient` on the accept thread for
    /// each client (it must not block). Binding is a few system calls, so this may run on the link's reader.
    func bind(
        _ address: Endpoint, forward: UInt32, for link: Link, logger: Logger,
        onClient: @escaping @Sendable (Socket) -> Void
    ) -> Outcome {
        guard IPNetwork.bytes(of: address.host) != nil else {
            return Outcome(result: .notAllowed, port: 0, verdict: "not allowed: the bind address must be an IP address")
        }
        let rules = self.rules
        guard let rule = rules.first(where: { $0.allows(address) }) else {
            let verdict =
                rules.isEmpty
                ? "not allowed: this agent has no --allow-listen rule"
                : "not allowed: no --allow-listen rule covers it (rules: \(rules.map(\.description).joined(separator: ", ")))"
            return Outcome(result: .notAllowed, port: 0, verdict: verdict)
        }
        let key = Endpoint(host: WireHost(address.host)!.text, port: address.port)
        return entries.withLock { entries in
            if let entry = entries[key] {
                guard entry.link === link, entry.forward == forward else {
                    return Outcome(result: .addressInUse, port: 0, verdict: "address in use by another link")
                }
                return Outcome(result: .bound, port: address.port, verdict: "already bound for this link")
            }
            let listener: Listener
            do throws(ListenError) {
                listener = try Listener(endpoint: key)
            } catch .cannotListen(_, let cause) where cause.code == EADDRINUSE {
                return Outcome(result: .addressInUse, port: 0, verdict: "address in use by another program")
            } catch {
                return Outcome(result: .failed, port: 0, verdict: "\(error)")
            }
            do {
                try listener.start(logger: logger, handle: onClient)
            } catch {
                listener.stop()
                return Outcome(result: .failed, port: 0, verdict: "\(error)")
            }
            entries[key] = Entry(link: link, forward: forward, listener: listener)
            return Outcome(result: .bound, port: listener.endpoint.port, verdict: "allowed by rule \(rule)")
        }
    }

    /// Stops listening on every port bound for `link`, or only for its reverse forward `forward`; returns the
    /// addresses released. Never blocks, so that the link's threads may call it: each accept thread closes its
    /// port soon after.
    @discardableResult
    func release(for link: Link, forward: UInt32? = nil) -> [Endpoint] {
        Array(stop(waiting: false) { $0.link === link && (forward == nil || $0.forward == forward) }.keys)
    }

    /// Replaces the rules (a reload). Ports the new rules do not cover stop listening; returns them, with the
    /// link and reverse forward each was bound for.
    func update(rules newRules: [ListenRule]) -> [(address: Endpoint, link: Link, forward: UInt32)] {
        ruleSet.withLock { $0 = newRules }
        return stop(waiting: true) { entry in !newRules.contains { $0.allows(entry.listener.endpoint) } }.map {
            ($0.key, $0.value.link, $0.value.forward)
        }
    }

    /// Removes and stops the listeners `matching` selects; `waiting` until each has closed its port, or not
    /// (on a link's threads, which must not block).
    private func stop(waiting: Bool, matching: (Entry) -> Bool) -> [Endpoint: Entry] {
        let stopped = entries.withLock { entries in
            let selected = entries.filter { matching($0.value) }
            for key in selected.keys { entries[key] = nil }
            return selected
        }
        for entry in stopped.values {
            if waiting { entry.listener.stop() } else { entry.listener.requestStop() }
        }
        return stopped
    }

    /// Stops every listener.
    func releaseAll() {
        _ = stop(waiting: true) { _ in true }
    }
}
