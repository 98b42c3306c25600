import CLinux
import Glibc

/// A thin typed layer over one epoll(7) instance, level-triggered. Owned by one thread, which closes it.
struct Epoll {
    private let fd: Int32

    /// epoll_create1(2) with close-on-exec.
    init() throws(SocketError) {
        fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw .lastError("epoll_create1") }
    }

    /// Watches `descriptor` for input, end of stream and errors; `token` comes back with its events.
    func watch(_ descriptor: Int32, token: UInt64) throws(SocketError) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
        event.data.u64 = token
        guard epoll_ctl(fd, EPOLL_CTL_ADD, descriptor, &event) == 0 else { throw .lastError("epoll_ctl") }
    }

    /// Stops watching `descriptor` (before it is handed to another owner; a closed descriptor leaves by itself).
    func forget(_ descriptor: Int32) {
        var event = epoll_event()
        _ = epoll_ctl(fd, EPOLL_CTL_DEL, descriptor, &event)
    }

    /// epoll_wait(2) for up to `timeoutMillis`; returns the tokens of the descriptors that are ready, in
    /// `tokens` (which it empties first). `EINTR` counts as a wake with nothing ready.
    func wait(into tokens: inout [UInt64], events: UnsafeMutableBufferPointer<epoll_event>, timeoutMillis: Int32) {
        tokens.removeAll(keepingCapacity: true)
        let count = epoll_wait(fd, events.baseAddress, Int32(events.count), timeoutMillis)
        guard count > 0 else { return }
        for index in 0..<Int(count) { tokens.append(events[index].data.u64) }
    }

    /// close(2).
    func close() {
        _ = Glibc.close(fd)
    }
}
