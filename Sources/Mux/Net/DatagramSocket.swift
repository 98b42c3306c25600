import Glibc

/// A thin typed layer over one POSIX UDP socket: each datagram sent or received whole, and a send never waits
/// (UDP drops what a full buffer cannot take, and so do we). `EINTR` is retried here.
///
/// Like `Socket`, a plain value: its owner, named where it is stored, closes it once, after every thread using
/// it is done. Any thread may send while one receives.
package struct DatagramSocket: Sendable {
    /// The descriptor, with the calls every socket shares (timeouts, shutdown, close, addresses).
    package let socket: Socket

    /// socket(2) and bind(2) on the first of `addresses` that works, for a forward's clients. Without
    /// `SO_REUSEADDR`, which for UDP would let a second program bind the same port and take some of its datagrams.
    package static func bind(to addresses: [ResolvedAddress]) throws(SocketError) -> DatagramSocket {
        var lastError = SocketError(call: "bind", code: EADDRNOTAVAIL)
        for address in addresses {
            let socket = try open(family: address.family)
            guard address.withSockaddr({ Glibc.bind(socket.fd, $0, $1) }) == 0 else {
                lastError = .lastError("bind")
                socket.close()
                continue
            }
            return DatagramSocket(socket: socket)
        }
        throw lastError
    }

    /// socket(2) and connect(2) to `address`: datagrams go there, and only its replies are received.
    package static func connect(to address: ResolvedAddress) throws(SocketError) -> DatagramSocket {
        let socket = try open(family: address.family)
        guard address.withSockaddr({ Glibc.connect(socket.fd, $0, $1) }) == 0 else {
            let error = SocketError.lastError("connect")
            socket.close()
            throw error
        }
        return DatagramSocket(socket: socket)
    }

    private static func open(family: Int32) throws(SocketError) -> Socket {
        let fd = Glibc.socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .lastError("socket") }
        return Socket(fd: fd)
    }

    /// recvfrom(2) of one datagram into `buffer`, with its sender. Returns the datagram's whole length, which is
    /// more than `buffer.count` when it did not fit (`MSG_TRUNC`: the rest is lost). A receive timeout throws an
    /// error whose `isTimeout` is true. After `shutdown` it returns 0 at once, as for an empty datagram: the
    /// caller tells them apart by knowing it stopped.
    package func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> (
        count: Int, sender: ResolvedAddress
    ) {
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = withUnsafeMutableBytes(of: &storage) {
                recvfrom(
                    socket.fd, buffer.baseAddress, buffer.count, Int32(MSG_TRUNC),
                    $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
            }
            if n >= 0 { return (n, ResolvedAddress(storage: storage, length: length)) }
            let code = errno
            if code == EINTR { continue }
            throw SocketError(call: "recv", code: code)
        }
    }

    /// Waits, like `receive`, for the next datagram and returns its whole length without taking it (recv(2) with
    /// `MSG_PEEK | MSG_TRUNC`), so that the caller can receive it into memory of exactly its size. After
    /// `shutdown` it returns 0 at once.
    func nextDatagramSize() throws(SocketError) -> Int {
        var byte: UInt8 = 0
        while true {
            let n = recv(socket.fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_TRUNC))
            if n >= 0 { return n }
            let code = errno
            if code == EINTR { continue }
            throw SocketError(call: "recv", code: code)
        }
    }

    /// Sends one datagram without waiting (`MSG_DONTWAIT`): to `address`, or on a connected socket to its peer.
    /// Returns `false`, sending nothing, when the socket's buffer has no room for it.
    package func send(_ payload: UnsafeRawBufferPointer, to address: ResolvedAddress? = nil) throws(SocketError)
        -> Bool
    {
        let flags = Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)
        while true {
            let n =
                if let address {
                    address.withSockaddr { sendto(socket.fd, payload.baseAddress, payload.count, flags, $0, $1) }
                } else {
                    Glibc.send(socket.fd, payload.baseAddress, payload.count, flags)
                }
            if n >= 0 { return true }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK || code == ENOBUFS { return false }
            throw SocketError(call: "send", code: code)
        }
    }

    /// `SO_RCVBUF`: asks the kernel to queue up to `bytes` of datagrams that the socket's thread has not read yet;
    /// the kernel caps it at `net.core.rmem_max`. UDP drops what arrives while the queue is full, so a deeper queue
    /// rides out the moments a busy machine leaves the thread unscheduled.
    package func requestReceiveBuffer(_ bytes: Int) {
        var value = Int32(clamping: bytes)
        _ = setsockopt(socket.fd, SOL_SOCKET, SO_RCVBUF, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    /// The address the socket is bound to (getsockname(2)).
    package var localEndpoint: Endpoint { socket.localEndpoint }

    /// Wakes a thread blocked receiving on this socket, which then gets 0 (see `receive`).
    package func shutdown() { socket.shutdown(.both) }

    /// close(2); once, after every thread using the socket is done.
    package func close() { socket.close() }
}
