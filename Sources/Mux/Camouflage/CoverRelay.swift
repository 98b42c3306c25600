/// One stranger's connection relayed to the cover, byte for byte both ways, so that whoever is not a local
/// agent — a browser, a scanner, a replayed hello — gets the cover's own answers. It runs on the handshake
/// thread with every other relay: no thread of its own, two descriptors, and a backlog only while one side
/// reads slower than the other sends, at most `Limits.coverRelayBacklog` each way (reading stops until it is
/// sent). An end of stream passes through as a half-close once the bytes before it are sent; a reset or error
/// on either side resets the other.
///
/// Owned by the handshake thread, which calls `serve` when epoll says a side is ready and watches each side for
/// what `clientInterest` and `coverInterest` say.
struct CoverRelay {
    /// Which connection of the relay is ready.
    enum Side {
        case client, cover
    }

    /// What a relay does after a `serve`.
    enum Outcome {
        /// Bytes may still flow.
        case running
        /// Both sides ended their streams and every byte was passed on: close both.
        case finished
        /// A side failed (reset, error, the cover unreachable): close both with a reset.
        case failed
    }

    let client: Socket
    let cover: Socket
    private var isConnected = false
    /// Bytes for the cover: at first, those the client sent before it was relayed.
    private var toCover: [UInt8]
    private var toClient: [UInt8] = []
    private var clientEnded = false
    private var coverEnded = false
    private var isCoverShutDown = false
    private var isClientShutDown = false
    /// Monotonic nanoseconds when a byte last moved, or the relay began.
    private(set) var lastActivity: UInt64

    /// A relay of `client` to `cover` (a connect started with `Socket.startConnect`), passing on first the
    /// bytes the client sent before it was relayed.
    init(client: Socket, cover: Socket, received: [UInt8], now: UInt64) {
        self.client = client
        self.cover = cover
        toCover = received
        lastActivity = now
    }

    /// Moves what `side` being ready allows, reading into `buffer`; `now` is monotonic nanoseconds.
    mutating func serve(_ side: Side, buffer: UnsafeMutableRawBufferPointer, now: UInt64) -> Outcome {
        if side == .cover && !isConnected {
            // An event for the cover's descriptor number may be a stale one, of a descriptor closed earlier in
            // the same wake whose number this connection got: only a writable socket has finished connecting.
            guard cover.hasConnectEnded else { return .running }
            guard cover.connectionError == nil else { return .failed }
            isConnected = true
        }
        do throws(SocketError) {
            let moved = try flushBacklogs() + (try read(side, buffer: buffer))
            if moved > 0 { lastActivity = now }
            if clientEnded && toCover.isEmpty && isConnected && !isCoverShutDown {
                cover.shutdown(.write)
                isCoverShutDown = true
            }
            if coverEnded && toClient.isEmpty && !isClientShutDown {
                client.shutdown(.write)
                isClientShutDown = true
            }
        } catch {
            return .failed
        }
        return clientEnded && coverEnded && toCover.isEmpty && toClient.isEmpty ? .finished : .running
    }

    /// What to watch the client's connection for.
    var clientInterest: Epoll.Interest {
        var interest: Epoll.Interest = []
        if !clientEnded && toCover.count < Limits.coverRelayBacklog { interest.insert(.input) }
        if !toClient.isEmpty { interest.insert(.output) }
        return interest
    }

    /// What to watch the cover's connection for: its connect until it completes.
    var coverInterest: Epoll.Interest {
        guard isConnected else { return .output }
        var interest: Epoll.Interest = []
        if !coverEnded && toClient.count < Limits.coverRelayBacklog { interest.insert(.input) }
        if !toCover.isEmpty { interest.insert(.output) }
        return interest
    }

    /// Closes both connections, with a reset when `abort` (a side failed, or the relay was shed).
    func close(abort: Bool) {
        if abort {
            client.setAbortOnClose()
            cover.setAbortOnClose()
        }
        client.close()
        cover.close()
    }

    /// Sends what each backlog can without waiting; returns the bytes sent.
    private mutating func flushBacklogs() throws(SocketError) -> Int {
        var sent = 0
        if isConnected && !toCover.isEmpty { sent += try Self.send(&toCover, to: cover) }
        if !toClient.isEmpty { sent += try Self.send(&toClient, to: client) }
        return sent
    }

    /// Reads what `side` has, up to the room its backlog leaves, and passes it on; returns the bytes read.
    private mutating func read(_ side: Side, buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        switch side {
        case .client:
            guard !clientEnded, toCover.count < Limits.coverRelayBacklog else { return 0 }
            return try Self.move(
                from: client, to: isConnected ? cover : nil, backlog: &toCover, ended: &clientEnded, buffer: buffer)
        case .cover:
            guard isConnected, !coverEnded, toClient.count < Limits.coverRelayBacklog else { return 0 }
            return try Self.move(from: cover, to: client, backlog: &toClient, ended: &coverEnded, buffer: buffer)
        }
    }

    /// Reads from `source` and sends on to `destination` what it takes at once (nothing while it is `nil`, not
    /// yet connected), keeping the rest in `backlog`; marks `ended` at end of stream.
    private static func move(
        from source: Socket, to destination: Socket?, backlog: inout [UInt8], ended: inout Bool,
        buffer: UnsafeMutableRawBufferPointer
    ) throws(SocketError) -> Int {
        let room = UnsafeMutableRawBufferPointer(
            rebasing: buffer[..<min(buffer.count, Limits.coverRelayBacklog - backlog.count)])
        guard let count = try source.receiveAvailable(into: room) else { return 0 }
        if count == 0 {
            ended = true
            return 0
        }
        let bytes = UnsafeRawBufferPointer(rebasing: room[..<count])
        var sent = 0
        if let destination, backlog.isEmpty { sent = try destination.sendAvailable(bytes) }
        backlog += bytes[sent...]
        return count
    }

    /// Sends what `destination` takes of `backlog` at once and drops it from `backlog`.
    private static func send(_ backlog: inout [UInt8], to destination: Socket) throws(SocketError) -> Int {
        let sent = try backlog.withUnsafeBytes { raw in
            Result { () throws(SocketError) in try destination.sendAvailable(raw) }
        }.get()
        backlog.removeFirst(sent)
        return sent
    }
}
