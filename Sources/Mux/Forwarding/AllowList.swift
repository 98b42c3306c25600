/// What a remote agent lets local agents reach: its default target, always, and the targets its `--allow`
/// rules name. Nothing else.
public struct AllowList: Sendable {
    /// Where streams that name no target go.
    public let defaultTarget: Endpoint
    /// The `--allow` rules, in the order given.
    public let rules: [AllowRule]
    /// Every rule that applies, the default target's first.
    private let effectiveRules: [AllowRule]

    /// The default target plus `rules`.
    public init(defaultTarget: Endpoint, rules: [AllowRule] = []) {
        self.defaultTarget = defaultTarget
        self.rules = rules
        effectiveRules = [AllowRule(exactly: defaultTarget)] + rules
    }

    /// How a request for a target was decided, in words for the logs of both agents.
    struct Decision {
        /// The addresses the stream may be connected to, in the resolver's order; empty when refused.
        let addresses: [ResolvedAddress]
        /// Why the request is refused, or `nil` when it is allowed.
        let refusal: ResetReason?
        /// The rule set's verdict, e.g. `allowed by rule db.internal:5432`.
        let verdict: String

        /// `endpoint`, allowed for `verdict`, resolved; refused as not resolved if it does not.
        static func resolving(_ endpoint: Endpoint, verdict: String) -> Decision {
            do {
                return Decision(addresses: try endpoint.resolve(), refusal: nil, verdict: verdict)
            } catch {
                return Decision(addresses: [], refusal: .nameNotResolved, verdict: "\(error)")
            }
        }
    }

    /// Decides a stream (or, for `.udp`, a flow) to `target` and resolves it. A name is resolved only when a
    /// rule could allow it, so a refused name is never looked up: if a name rule matches, every address of the
    /// name may be dialled; otherwise only the addresses that an address or network rule covers. Only rules that
    /// cover `kind` count; the default target is a TCP one, and a flow always names its target.
    func decide(_ target: StreamTarget, kind: TrafficKind = .tcp) -> Decision {
        switch target {
        case .defaultTarget where kind == .tcp: return .resolving(defaultTarget, verdict: "the default target")
        case .defaultTarget: return refuse("a UDP flow must name its target")
        case .reverseForward:
            return Decision(addresses: [], refusal: .notAllowed, verdict: "not allowed: the remote agent opens those")
        case .endpoint(let endpoint): return decide(endpoint, kind: kind)
        }
    }

    private func decide(_ endpoint: Endpoint, kind: TrafficKind) -> Decision {
        let effectiveRules = effectiveRules.filter { $0.kinds.contains(kind) }
        let isAddress = IPNetwork.bytes(of: endpoint.host) != nil
        let what = kind == .udp ? "\(endpoint) for UDP" : "\(endpoint)"
        if !isAddress, let rule = effectiveRules.first(where: { $0.allows(name: endpoint.host, port: endpoint.port) }) {
            return .resolving(endpoint, verdict: "allowed by rule \(rule)")
        }
        guard effectiveRules.contains(where: { $0.allowsAddresses(port: endpoint.port) }) else {
            return refuse("no --allow rule names \(what)")
        }
        let all: [ResolvedAddress]
        do {
            all = try endpoint.resolve()
        } catch {
            return Decision(addresses: [], refusal: .nameNotResolved, verdict: "\(error)")
        }
        var matched: [String] = []
        let allowed = all.filter { address in
            guard
                let rule = effectiveRules.first(where: { $0.allows(address: address.addressBytes, port: endpoint.port) }
                )
            else { return false }
            matched.append("\(address.endpoint.host) by rule \(rule)")
            return true
        }
        guard !allowed.isEmpty else {
            let addresses = all.map(\.endpoint.host).joined(separator: ", ")
            return refuse(
                isAddress
                    ? "no --allow rule covers \(what)"
                    : "\(endpoint.host) resolves to \(addresses), which no --allow rule covers at port \(endpoint.port)"
                        + (kind == .udp ? " for UDP" : "")
            )
        }
        return Decision(addresses: allowed, refusal: nil, verdict: "allowed: \(matched.joined(separator: ", "))")
    }

    private func refuse(_ reason: String) -> Decision {
        Decision(addresses: [], refusal: .notAllowed, verdict: "not allowed: \(reason)")
    }
}
