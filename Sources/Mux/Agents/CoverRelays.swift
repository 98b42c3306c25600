/// The relays to the cover the handshake thread runs (TLS transport), and which of them it closes when there are
/// too many: at most `Limits.maxCoverRelays` at once and `Limits.maxCoverRelaysPerSource` from one source,
/// shedding old ones for new ones as `PendingTable` sheds pending connections. Owned by the handshake thread.
struct CoverRelays {
    private struct Entry {
        var relay: CoverRelay
        /// What each side is watched for now, so that epoll is only told of changes.
        var clientInterest: Epoll.Interest
        var coverInterest: Epoll.Interest
    }

    private var entries: [Int32: Entry] = [:]
    /// The client descriptor of the relay each cover descriptor belongs to.
    private var clientOfCover: [Int32: Int32] = [:]
    private var table: PendingTable
    private let idleTimeout: UInt64

    /// Room for `capacity` relays, `capacityPerSource` from one source, each closed after `idleTimeout` seconds
    /// without a byte: `Limits`' bounds unless a test needs smaller ones.
    init(
        capacity: Int = Limits.maxCoverRelays, capacityPerSource: Int = Limits.maxCoverRelaysPerSource,
        idleTimeout: Double = Limits.coverRelayIdleTimeout
    ) {
        table = PendingTable(capacity: capacity, capacityPerSource: capacityPerSource)
        self.idleTimeout = UInt64(idleTimeout * 1e9)
    }

    /// Relays running now.
    var count: Int { entries.count }

    /// The client descriptor of the relay `fd` belongs to (as its client's or its cover's connection).
    func clientDescriptor(of fd: Int32) -> Int32? {
        entries[fd] != nil ? fd : clientOfCover[fd]
    }

    /// Adds `relay`, from `source`, whose client `epoll` already watches for input and whose cover it does not
    /// watch, and has `epoll` watch both sides for what the relay wants; returns the relay shed to make room, out
    /// of the table and still open.
    mutating func add(
        _ relay: CoverRelay, from source: ConnectionSource, now: UInt64, epoll: Epoll,
        using generator: inout some RandomNumberGenerator
    ) -> CoverRelay? {
        let shed = table.admit(relay.client.fd, from: source, now: now, deadline: .max, using: &generator).flatMap {
            remove($0)
        }
        let (client, cover) = (relay.clientInterest, relay.coverInterest)
        epoll.update(relay.client.fd, token: Self.token(relay.client.fd), from: .input, to: client)
        epoll.update(relay.cover.fd, token: Self.token(relay.cover.fd), from: [], to: cover)
        entries[relay.client.fd] = Entry(relay: relay, clientInterest: client, coverInterest: cover)
        clientOfCover[relay.cover.fd] = relay.client.fd
        return shed
    }

    /// Takes the relay of client descriptor `fd` out; returns it, still open.
    @discardableResult
    mutating func remove(_ fd: Int32) -> CoverRelay? {
        guard let entry = entries.removeValue(forKey: fd) else { return nil }
        clientOfCover[entry.relay.cover.fd] = nil
        table.remove(fd)
        return entry.relay
    }

    /// Runs `body` on the relay of client descriptor `fd`, then tells `epoll` what each side is watched for if
    /// that changed; returns what `body` returned.
    mutating func update(_ fd: Int32, epoll: Epoll, _ body: (inout CoverRelay) -> CoverRelay.Outcome)
        -> CoverRelay.Outcome?
    {
        guard var entry = entries[fd] else { return nil }
        let outcome = body(&entry.relay)
        let (client, cover) = (entry.relay.clientInterest, entry.relay.coverInterest)
        epoll.update(fd, token: Self.token(fd), from: entry.clientInterest, to: client)
        let coverFD = entry.relay.cover.fd
        epoll.update(coverFD, token: Self.token(coverFD), from: entry.coverInterest, to: cover)
        entry.clientInterest = client
        entry.coverInterest = cover
        entries[fd] = entry
        return outcome
    }

    /// The client descriptors of relays that moved no byte for the idle timeout, at `now` (monotonic
    /// nanoseconds).
    func idle(now: UInt64) -> [Int32] {
        // A relay that began after `now` was read (in the same sweep) is not idle.
        entries.compactMap { now >= $0.value.relay.lastActivity &+ idleTimeout ? $0.key : nil }
    }

    /// Closes every relay (the agent is stopping).
    mutating func closeAll() {
        for entry in entries.values { entry.relay.close(abort: false) }
        entries = [:]
        clientOfCover = [:]
    }

    /// Epoll tokens are descriptors, for relays as for pending connections.
    static func token(_ fd: Int32) -> UInt64 { UInt64(UInt32(bitPattern: fd)) }
}
