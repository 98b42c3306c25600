import Foundation
import Logging

/// The ports a remote agent listens on for its links' reverse forwards (`-R`): each bound for one link only,
/// within the `--allow-listen` rules, and released when that link goes down.
///
/// `@unchecked Sendable`: `entries` is guarded by its `Locked`; the listeners are Sendable.
final class ReverseListeners: @unchecked Sendable {
    private struct Entry {
        let link: ObjectIdentifier
        let forward: UInt32
        let listener: Listener
    }

    private let rules: [ListenRule]
    private let entries = Locked<[Endpoint: Entry]>([:])

    init(rules: [ListenRule]) {
        self.rules = rules
    }

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
                guard entry.link == ObjectIdentifier(link), entry.forward == forward else {
                    return Outcome(result: .addressInUse, port: 0, verdict: "address in use by another link")
                }
                return Outcome(result: .bound, port: address.port, verdict: "already bound for this link")
            }
            let listener: Listener
            do throws(AgentError) {
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
            entries[key] = Entry(link: ObjectIdentifier(link), forward: forward, listener: listener)
            return Outcome(result: .bound, port: listener.endpoint.port, verdict: "allowed by rule \(rule)")
        }
    }

    /// Stops listening on every port bound for `link`; returns the addresses released.
    @discardableResult
    func release(for link: Link) -> [Endpoint] {
        let released = entries.withLock { entries in
            let mine = entries.filter { $0.value.link == ObjectIdentifier(link) }
            for key in mine.keys { entries[key] = nil }
            return mine
        }
        for entry in released.values { entry.listener.stop() }
        return Array(released.keys)
    }

    /// Stops every listener.
    func releaseAll() {
        let all = entries.withLock { entries in
            defer { entries = [:] }
            return entries
        }
        for entry in all.values { entry.listener.stop() }
    }
}
