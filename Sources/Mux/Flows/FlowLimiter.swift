/// Caps the UDP flows one agent keeps, in all (`--max-udp-flows`) and from one source address
/// (`--max-udp-flows-per-source`). At a cap it makes room as a NAT table does, by ending an idle flow among those
/// that wait for nothing: whose last datagram was the target's answer (a DNS question's flow is done once
/// answered, long before its idle timeout), or that have been idle for `Limits.flowEvictionIdle`. A flow whose
/// question is still unanswered is kept. When no flow at the cap can go, the new one is refused and counted.
/// Keeps the agent's flows gauge.
///
/// Which flow goes: the idlest of `Limits.evictionSample` drawn at random (as Redis approximates LRU), so that
/// making room costs the same at 100 flows as at 100,000; only when none of those may go are all looked at.
final class FlowLimiter: Sendable {
    private struct Entry {
        let flow: any LimitedFlow
        let source: [UInt8]
    }

    private struct State {
        var all = SampledSet<Entry>()
        var bySource: [[UInt8]: SampledSet<Entry>] = [:]
    }

    /// The most flows at once, and from one source.
    let limit: Int
    let perSourceLimit: Int
    private let state = Locked(State())
    private let metrics: DatagramMetrics

    init(limit: Int, perSourceLimit: Int, metrics: DatagramMetrics) {
        self.limit = limit
        self.perSourceLimit = perSourceLimit
        self.metrics = metrics
    }

    /// Takes a slot for `flow`, whose client is at `source` (an address's 4 or 16 bytes). At a cap, first ends
    /// an idle flow (of that source, or of all) that may go; returns `false`, counting the refusal, if none may.
    /// Never blocks.
    func admit(_ flow: any LimitedFlow, from source: [UInt8]) -> Bool {
        let (isAdmitted, victim): (Bool, (any LimitedFlow)?) = state.withLock { state in
            var victim: Entry?
            if let flows = state.bySource[source], flows.count >= perSourceLimit {
                victim = Self.evictable(in: flows)
                if victim == nil { return (false, nil) }
            } else if state.all.count >= limit {
                victim = Self.evictable(in: state.all)
                if victim == nil { return (false, nil) }
            }
            if let victim { Self.remove(victim.flow, from: &state) }
            let entry = Entry(flow: flow, source: source)
            state.all.insert(entry, for: ObjectIdentifier(flow))
            state.bySource[source, default: SampledSet()].insert(entry, for: ObjectIdentifier(flow))
            metrics.recordActive(state.all.count)
            return (true, victim?.flow)
        }
        if let victim {
            metrics.recordEviction()
            victim.evict()
        }
        if !isAdmitted { metrics.recordRefusal(.tooManyStreams) }
        return isAdmitted
    }

    /// Returns `flow`'s slot; nothing if it holds none (already released, or evicted).
    func release(_ flow: any LimitedFlow) {
        state.withLock { state in
            Self.remove(flow, from: &state)
            metrics.recordActive(state.all.count)
        }
    }

    /// Flows held now.
    var count: Int { state.withLock { $0.all.count } }

    /// Why a flow is refused at a cap, for a log line.
    var refusal: String {
        "\(limit) flows (--max-udp-flows) or \(perSourceLimit) from one address (--max-udp-flows-per-source), "
            + "each awaiting an answer and active in the last \(Int(Limits.flowEvictionIdle)) s"
    }

    /// The idlest flow that may go of a random sample of `flows`, else of all of them.
    private static func evictable(in flows: SampledSet<Entry>) -> Entry? {
        idlest(of: flows.sample(Limits.evictionSample)) ?? idlest(of: flows.elements)
    }

    private static func idlest(of entries: some Sequence<Entry>) -> Entry? {
        entries.lazy.map { ($0, $0.flow.activity) }
            .filter { $0.1.isAnswered || $0.1.idleSeconds >= Limits.flowEvictionIdle }
            .map { ($0.0, $0.1.idleSeconds) }.max { $0.1 < $1.1 }?.0
    }

    private static func remove(_ flow: any LimitedFlow, from state: inout State) {
        let key = ObjectIdentifier(flow)
        guard let entry = state.all.remove(key) else { return }
        state.bySource[entry.source]?.remove(key)
        if state.bySource[entry.source]?.count == 0 { state.bySource[entry.source] = nil }
    }
}

/// Elements by key, with insertion, removal and a uniform random sample each in constant time: an array, and
/// where each key's element sits in it (removal moves the last element into the hole).
struct SampledSet<Element> {
    private(set) var elements: [Element] = []
    private var keys: [ObjectIdentifier] = []
    private var positions: [ObjectIdentifier: Int] = [:]

    var count: Int { elements.count }

    mutating func insert(_ element: Element, for key: ObjectIdentifier) {
        precondition(positions[key] == nil, "a key is inserted once")
        positions[key] = elements.count
        elements.append(element)
        keys.append(key)
    }

    @discardableResult
    mutating func remove(_ key: ObjectIdentifier) -> Element? {
        guard let position = positions.removeValue(forKey: key) else { return nil }
        let element = elements[position]
        let last = elements.count - 1
        if position != last {
            elements[position] = elements[last]
            keys[position] = keys[last]
            positions[keys[position]] = position
        }
        elements.removeLast()
        keys.removeLast()
        return element
    }

    /// Up to `count` elements drawn uniformly, with replacement.
    func sample(_ count: Int) -> [Element] {
        elements.isEmpty ? [] : (0..<count).map { _ in elements.randomElement()! }
    }
}

extension SampledSet: Sendable where Element: Sendable {}
