import CLinux
import Glibc

/// A thin typed layer over one POSIX TCP socket descriptor. `EINTR` is retried here and nowhere else.
///
/// A `Socket` is a plain value: ownership (who closes it, which thread reads or writes it) is stated by
/// the type that stores it. `close()` must be called exactly once, after every thread using it is done.
package struct Socket: Sendable, Hashable {
    /// The descriptor.
    package let fd: Int32

    /// Adopts `fd`, an open stream socket, which the caller stops using directly.
    package init(fd: Int32) {
        self.fd = fd
    }

    /// Which directions `shutdown(2)` ends.
    package enum Direction {
        case read, write, both
        var how: Int32 {
            switch self {
            case .read: Int32(SHUT_RD)
            case .write: Int32(SHUT_WR)
            case .both: Int32(SHUT_RDWR)
            }
        }
    }

    // MARK: Creating sockets

    /// socket(2), bind(2), listen(2) with `SO_REUSEADDR`, on the first address that works.
    package static func listen(on addresses: [ResolvedAddress], backlog: Int32 = Limits.listenBacklog)
        throws(SocketError)
        -> Socket
    {
        var lastError = SocketError(call: "bind", code: EADDRNOTAVAIL)
        for address in addresses {
            let fd = Glibc.socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .lastError("socket") }
            let socket = Socket(fd: fd)
            socket.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
            let bound = address.withSockaddr { Glibc.bind(fd, $0, $1) }
            if bound != 0 {
                lastError = .lastError("bind")
                socket.close()
                continue
            }
            guard Glibc.listen(fd, backlog) == 0 else {
                lastError = .lastError("listen")
                socket.close()
                continue
            }
            return socket
        }
        throw lastError
    }

    /// connect(2) to the first address that answers within `timeout` seconds each.
    package static func connect(to addresses: [ResolvedAddress], timeout: Double) throws(SocketError) -> Socket {
        var lastError = SocketError(call: "connect", code: EADDRNOTAVAIL)
        for address in addresses {
            do {
                return try connect(to: address, timeout: timeout)
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private static func connect(to address: ResolvedAddress, timeout: Double) throws(SocketError) -> Socket {
        // A non-blocking connect bounded by poll(2): a blocking connect could hang for the kernel's
        // SYN retry time (over two minutes) on a black-holed target.
        let socket = try startConnect(to: address)
        var poller = pollfd(fd: socket.fd, events: Int16(POLLOUT), revents: 0)
        var ready: Int32
        repeat { ready = poll(&poller, 1, Int32(timeout * 1000)) } while ready < 0 && errno == EINTR
        guard ready > 0 else {
            socket.close()
            throw SocketError(call: "connect", code: ready == 0 ? ETIMEDOUT : errno)
        }
        if let error = socket.connectionError {
            socket.close()
            throw error
        }
        socket.setBlocking(true)
        return socket
    }

    /// accept4(2) with close-on-exec, retrying `EINTR` and connections aborted before they were accepted.
    package func accept() throws(SocketError) -> Socket {
        // A blocking listening socket waits instead of reporting that no connection is pending.
        guard let (client, _) = try accept(flags: 0) else { throw SocketError(call: "accept", code: EAGAIN) }
        return client
    }

    /// accept4(2) on a non-blocking listening socket: the next pending connection, itself non-blocking and
    /// close-on-exec, with its peer's address; `nil` when none is waiting. Retries `EINTR` and connections
    /// aborted before they were accepted.
    func acceptPending() throws(SocketError) -> (Socket, ResolvedAddress)? {
        try accept(flags: Int32(SOCK_NONBLOCK.rawValue))
    }

    /// accept4(2) with close-on-exec and `flags`; `nil` when a non-blocking socket has nothing pending.
    private func accept(flags: Int32) throws(SocketError) -> (Socket, ResolvedAddress)? {
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            // Close-on-exec from the start: set afterwards, a fork and exec in between would leak the socket.
            let client = withUnsafeMutableBytes(of: &storage) {
                accept4(
                    fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length,
                    Int32(SOCK_CLOEXEC.rawValue) | flags)
            }
            if client >= 0 { return (Socket(fd: client), ResolvedAddress(storage: storage, length: length)) }
            let code = errno
            if code == EINTR || code == ECONNABORTED { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return nil }
            throw SocketError(call: "accept", code: code)
        }
    }

    /// Whether the peer has closed or reset the connection, without taking any byte from it (recv(2) with
    /// `MSG_PEEK | MSG_DONTWAIT`): end of stream or an error, rather than data or nothing yet.
    var hasPeerLeft: Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
        let code = errno
        return n == 0 || (n < 0 && code != EAGAIN && code != EWOULDBLOCK && code != EINTR)
    }

    /// Sets or clears `O_NONBLOCK`.
    func setBlocking(_ isBlocking: Bool) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, isBlocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK)
    }

    // MARK: Moving bytes

    /// send(2) until every byte is written. `MSG_NOSIGNAL`: a closed peer is an error, not a SIGPIPE.
    package func sendAll(_ bytes: UnsafeRawBufferPointer) throws(SocketError) {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                throw SocketError(call: "send", code: code)
            }
            offset += n
        }
    }

    /// Sends what the socket takes without waiting (`MSG_DONTWAIT`); returns how many bytes that was.
    func sendAvailable(_ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.send(
                fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK { break }
                throw SocketError(call: "send", code: code)
            }
            offset += n
        }
        return offset
    }

    /// Sends every byte of `bytes`.
    package func sendAll(_ bytes: [UInt8]) throws(SocketError) {
        try bytes.withUnsafeBytes { raw in Result { () throws(SocketError) in try sendAll(raw) } }.get()
    }

    /// recv(2) into `buffer`; returns the number of bytes read, 0 at end of stream.
    package func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            let code = errno
            if code == EINTR { continue }
            throw SocketError(call: "recv", code: code)
        }
    }

    /// Blocks, like `receive`, until bytes arrive, without taking any; returns `false` at end of stream. Lets a
    /// reader hold no buffer while it waits.
    package func awaitBytes() throws(SocketError) -> Bool {
        var byte: UInt8 = 0
        while true {
            let n = recv(fd, &byte, 1, Int32(MSG_PEEK))
            if n >= 0 { return n > 0 }
            let code = errno
            if code == EINTR { continue }
            throw SocketError(call: "recv", code: code)
        }
    }

    /// Why `receive(exactly:before:)` came back short.
    package enum ShortRead: Error, Equatable {
        /// The peer closed after sending this many of the bytes.
        case closed(after: Int)
        /// The deadline passed first.
        case timedOut
        /// recv(2) failed.
        case failed(SocketError)
    }

    /// recv(2) until exactly `count` bytes have arrived (never more: what follows belongs to whoever reads
    /// next), or `deadline` passes. The deadline bounds the whole read, so a peer trickling bytes cannot stretch
    /// it. Leaves `SO_RCVTIMEO` set; the caller sets its own afterwards.
    package func receive(exactly count: Int, before deadline: ContinuousClock.Instant) throws(ShortRead) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let remaining = deadline - .now
            guard remaining > .zero else { throw .timedOut }
            setReceiveTimeout(seconds: remaining.inSeconds)
            let received = bytes.withUnsafeMutableBytes { raw in
                Result { () throws(SocketError) in
                    try receive(into: UnsafeMutableRawBufferPointer(rebasing: raw[filled...]))
                }
            }
            switch received {
            case .success(0): throw .closed(after: filled)
            case .success(let n): filled += n
            case .failure(let error): throw error.isTimeout ? .timedOut : .failed(error)
            }
        }
        return bytes
    }

    // MARK: Options and teardown

    /// shutdown(2). Used to wake a thread blocked in recv or send on this socket: close(2) from
    /// another thread does not wake it, and the descriptor number could be reused mid-call.
    package func shutdown(_ direction: Direction) {
        _ = Glibc.shutdown(fd, direction.how)
    }

    /// close(2), never retried: on Linux the descriptor is gone even when close reports EINTR.
    package func close() {
        _ = Glibc.close(fd)
    }

    /// `SO_LINGER` with a zero timeout, so that `close()` sends RST instead of FIN: an abort the peer notices.
    package func setAbortOnClose() {
        var option = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
    }

    /// `TCP_NODELAY`: every write goes out at once. A link's writer batches frames itself and a stream writes
    /// whole messages, so Nagle's wait for an ACK would only add latency.
    package func setNoDelay() {
        setOption(Int32(IPPROTO_TCP), TCP_NODELAY, 1)
    }

    /// `TCP_NOTSENT_LOWAT`: a send waits while `bytes` or more are in the kernel's send buffer and not yet sent,
    /// so that a link's backlog stays in its writer's queue, where streams take turns, instead of in the
    /// kernel, where a frame waits behind everything written before it. Bytes sent and not yet acknowledged do
    /// not count: a long path still fills its window.
    package func setNotSentLowWater(_ bytes: Int) {
        setOption(Int32(IPPROTO_TCP), TCP_NOTSENT_LOWAT, Int32(bytes))
    }

    /// `SO_RCVTIMEO`: a receive that gets nothing for `seconds` fails with `EAGAIN`; 0 waits forever.
    package func setReceiveTimeout(seconds: Double) {
        setTimeout(SO_RCVTIMEO, seconds: seconds)
    }

    /// `SO_SNDTIMEO`: a send that moves no byte for `seconds` fails with `EAGAIN`; 0 waits forever.
    package func setSendTimeout(seconds: Double) {
        setTimeout(SO_SNDTIMEO, seconds: seconds)
    }

    private func setTimeout(_ option: Int32, seconds: Double) {
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        _ = setsockopt(fd, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// The address the socket is bound to (getsockname(2)).
    package var localEndpoint: Endpoint { localAddress.endpoint }

    /// The connected peer's address (getpeername(2)). Out of line, so that its socket-address buffers are not
    /// part of the frame of a stream's setup, which stays on the stream thread's stack for the stream's life.
    package var peerEndpoint: Endpoint {
        @inline(never) get { peerAddress.endpoint }
    }

    /// The address the socket is bound to, as getsockname(2) fills it in.
    var localAddress: ResolvedAddress {
        @inline(never) get { address(getsockname) }
    }

    /// The connected peer's address, as getpeername(2) fills it in.
    var peerAddress: ResolvedAddress {
        @inline(never) get { address(getpeername) }
    }

    private func address(
        _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) -> ResolvedAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutableBytes(of: &storage) {
            call(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        return ResolvedAddress(storage: storage, length: length)
    }

    private func setOption(_ level: Int32, _ name: Int32, _ value: Int32) {
        var value = value
        _ = setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
    }
}
