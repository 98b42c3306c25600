/// A connected, reliable, ordered byte stream that can be half-closed, as TCP can: what a link runs over. The
/// engine reads, writes and ends a link's channel only through this protocol, so that a link runs over any such
/// stream: a TCP socket, TLS records on one (`TLSRecordChannel`), a `socketpair(2)` or a traced socket in tests.
///
/// Ownership is the user's: whoever stores a channel states which thread reads it, which writes it, and who
/// calls `close()`, exactly once, after every other use.
protocol LinkChannel: Sendable {
    /// Blocks until bytes arrive and returns how many were put in `buffer`; 0 at end of stream. A receive that
    /// gets nothing within the receive timeout throws an error whose `isTimeout` is true.
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int
    /// Blocks until every byte is sent. A send that moves nothing within the send timeout throws an error whose
    /// `isTimeout` is true.
    func sendAll(_ bytes: UnsafeRawBufferPointer) throws(SocketError)
    /// Bounds how long `receive` and `sendAll` wait for progress, in seconds; 0 waits forever.
    func setTimeouts(receive: Double, send: Double)
    /// Ends one or both directions; wakes a thread blocked in `receive` (`.read`) or in `sendAll` (`.write`).
    func shutdown(_ direction: Socket.Direction)
    /// Releases the channel. Call once, after every thread is done with it.
    func close()
}

/// A link channel that a stream also carries: a client's or a target's connection, which a stream waits on
/// without a buffer, writes to without blocking when it can, and aborts.
protocol ByteChannel: LinkChannel {
    /// Blocks as `receive` does until bytes arrive, but leaves them to be received; returns `false` at end of
    /// stream.
    func awaitBytes() throws(SocketError) -> Bool
    /// Sends what fits without blocking and returns how many bytes that was.
    func sendAvailable(_ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Int
    /// Makes `close()` abort the connection (TCP RST) instead of ending it gracefully.
    func setAbortOnClose()
    /// Sends each write at once (`TCP_NODELAY`). A stream writes whole messages as they arrive; with Nagle's
    /// algorithm a response's last partial segment would wait for the peer's ACK, which a client that has
    /// nothing to send delays by 40 ms.
    func setNoDelay()
}

extension LinkChannel {
    /// Blocks until every byte of `bytes` is sent.
    func sendAll(_ bytes: [UInt8]) throws(SocketError) {
        try bytes.withUnsafeBytes { raw in Result { () throws(SocketError) in try sendAll(raw) } }.get()
    }
}

extension Socket: ByteChannel {
    func setTimeouts(receive: Double, send: Double) {
        setReceiveTimeout(seconds: receive)
        setSendTimeout(seconds: send)
    }
}
