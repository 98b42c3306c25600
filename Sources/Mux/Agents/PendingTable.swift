/// Where an unauthenticated connection comes from, for the per-source cap: its IPv4 address, or the /64 of its
/// IPv6 address (one host's usual allocation), with an IPv4-mapped IPv6 address counted as its IPv4 address.
struct ConnectionSource: Hashable, Sendable {
    private let isIPv6: Bool
    private let prefix: UInt64
    /// A trusted balancer's connection still waiting for the PROXY header that names its source: a source of
    /// its own, keyed by its descriptor; -1 for a source known by its address.
    private let awaitingHeader: Int32

    /// The source of a peer address as accept(2) fills it in.
    init(_ address: ResolvedAddress) {
        self.init(addressBytes: address.addressBytes)
    }

    /// The source of a 4-byte IPv4 or 16-byte IPv6 address.
    init(addressBytes bytes: [UInt8]) {
        let bytes = WireHost.unmapped(bytes)
        isIPv6 = bytes.count == 16
        let significant = isIPv6 ? bytes[..<8] : bytes[...]
        prefix = significant.reduce(0) { $0 << 8 | UInt64($1) }
        awaitingHeader = -1
    }

    /// The provisional source of a trusted balancer's connection `fd` until its header names the client.
    init(awaitingHeaderOn fd: Int32) {
        isIPv6 = false
        prefix = 0
        awaitingHeader = fd
    }
}

/// Which unauthenticated connections a remote agent keeps, and which it sheds when a flood fills its table.
/// Pure policy: it never touches a descriptor; the handshake gate does what it decides.
///
/// Shedding follows the idea of OpenSSH's MaxStartups (drop at random under load) with one change: the
/// connection dropped is an *old pending* one, never the one just accepted. A real hello arrives within one
/// round trip of its connect, so a real agent is almost never pending long enough to be the one shed, while a
/// flooder's silent connections age in the table until they are.
struct PendingTable {
    /// One pending connection, as the policy sees it.
    struct Entry {
        let source: ConnectionSource
        /// Monotonic nanoseconds at accept.
        let acceptedAt: UInt64
        /// Monotonic nanoseconds after which the gate closes it.
        let deadline: UInt64
        /// Where it sits in `order`.
        fileprivate var position: Int
    }

    /// Connections pending at most, from all sources together.
    let capacity: Int
    /// Connections pending at most from one source (an IPv4 address or an IPv6 /64).
    let capacityPerSource: Int
    /// How many random entries are drawn when the table is full; the oldest of them is shed. Eight makes the
    /// chance of shedding a connection younger than the median one 1 in 256.
    static let sheddingSample = 8

    private var entries: [Int32: Entry] = [:]
    /// The descriptors of `entries`, in no order, for drawing one at random in O(1).
    private var order: [Int32] = []
    private var bySource: [ConnectionSource: [Int32]] = [:]

    init(capacity: Int, capacityPerSource: Int) {
        precondition(capacity >= 1 && capacityPerSource >= 1, "a pending table holds at least one connection")
        self.capacity = capacity
        self.capacityPerSource = capacityPerSource
    }

    /// Connections pending now.
    var count: Int { entries.count }

    /// The entry for `fd`, if it is pending.
    subscript(fd: Int32) -> Entry? { entries[fd] }

    /// Adds `fd`, accepted just now from `source`. Returns the descriptor to shed to make room for it, if any,
    /// which is already out of the table: the oldest pending connection of the same source when that source is
    /// at its cap, else, when the table is full, the oldest of `sheddingSample` pending ones drawn at random.
    mutating func admit(
        _ fd: Int32, from source: ConnectionSource, now: UInt64, deadline: UInt64,
        using generator: inout some RandomNumberGenerator
    ) -> Int32? {
        precondition(entries[fd] == nil, "descriptor \(fd) is already pending")
        var shed = oldestAtCap(of: source)
        if shed == nil && entries.count >= capacity {
            shed = oldest(of: (0..<Self.sheddingSample).map { _ in order.randomElement(using: &generator)! })
        }
        if let shed { remove(shed) }
        insert(fd, from: source, acceptedAt: now, deadline: deadline)
        return shed
    }

    /// Counts pending `fd` as coming from `source` from now on (a trusted balancer named its client). Returns the
    /// descriptor shed to make room, if that source was at its cap: its oldest other pending connection.
    mutating func reassign(_ fd: Int32, to source: ConnectionSource) -> Int32? {
        guard let entry = remove(fd) else { return nil }
        let shed = oldestAtCap(of: source)
        if let shed { remove(shed) }
        insert(fd, from: source, acceptedAt: entry.acceptedAt, deadline: entry.deadline)
        return shed
    }

    /// The oldest pending connection of `source`, if that source is at its cap.
    private func oldestAtCap(of source: ConnectionSource) -> Int32? {
        guard let sameSource = bySource[source], sameSource.count >= capacityPerSource else { return nil }
        return oldest(of: sameSource)
    }

    private mutating func insert(_ fd: Int32, from source: ConnectionSource, acceptedAt: UInt64, deadline: UInt64) {
        entries[fd] = Entry(source: source, acceptedAt: acceptedAt, deadline: deadline, position: order.count)
        order.append(fd)
        bySource[source, default: []].append(fd)
    }

    /// Takes `fd` out of the table (its hello verified, it was closed, or it was shed). Returns its entry.
    @discardableResult
    mutating func remove(_ fd: Int32) -> Entry? {
        guard let entry = entries.removeValue(forKey: fd) else { return nil }
        let last = order.removeLast()
        if last != fd {
            order[entry.position] = last
            entries[last]!.position = entry.position
        }
        bySource[entry.source]!.removeAll { $0 == fd }
        if bySource[entry.source]!.isEmpty { bySource[entry.source] = nil }
        return entry
    }

    /// The descriptors whose deadline is at or before `now`, still in the table.
    func expired(now: UInt64) -> [Int32] {
        entries.compactMap { $0.value.deadline <= now ? $0.key : nil }
    }

    /// Every pending descriptor.
    var descriptors: [Int32] { order }

    private func oldest(of candidates: [Int32]) -> Int32 {
        candidates.min { entries[$0]!.acceptedAt < entries[$1]!.acceptedAt }!
    }
}
