import Glibc

extension Socket {
    /// A non-blocking connect(2) to `address`, started and not awaited: the socket reports itself writable once
    /// it is done, and `connectionError` then says how it went. Throws when it fails at once.
    static func startConnect(to address: ResolvedAddress) throws(SocketError) -> Socket {
        let fd = Glibc.socket(
            address.family,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .lastError("socket") }
        let socket = Socket(fd: fd)
        if address.withSockaddr({ Glibc.connect(fd, $0, $1) }) != 0 {
            let code = errno
            guard code == EINPROGRESS else {
                socket.close()
                throw SocketError(call: "connect", code: code)
            }
        }
        return socket
    }

    /// Whether poll(2) finds the socket writable, or failed, now: a connect started by `startConnect` is over.
    var hasConnectEnded: Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        return poll(&poller, 1, 0) > 0
    }

    /// How a connect started by `startConnect` ended, once the socket is writable: `nil` when it connected.
    var connectionError: SocketError? {
        var pending: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &pending, &length)
        return pending == 0 ? nil : SocketError(call: "connect", code: pending)
    }

    /// recv(2) without waiting (`MSG_DONTWAIT`): the bytes read, 0 at end of stream, `nil` when none are ready.
    func receiveAvailable(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int? {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
            if n >= 0 { return n }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return nil }
            throw SocketError(call: "recv", code: code)
        }
    }
}
