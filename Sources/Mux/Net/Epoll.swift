import CLinux
import Glibc

/// A thin typed layer over one epoll(7) instance, level-triggered. Owned by one thread, which closes it.
package struct Epoll {
    private let fd: Int32

    /// What a watched descriptor reports. Errors and hang-ups are always reported.
    package struct Interest: OptionSet {
        package let rawValue: UInt32
        package init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Input, or end of stream.
        package static let input = Interest(rawValue: EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
        /// Room to write, or a non-blocking connect that completed.
        package static let output = Interest(rawValue: EPOLLOUT.rawValue)
    }

    /// epoll_create1(2) with close-on-exec.
    package init() throws(SocketError) {
        fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw .lastError("epoll_create1") }
    }

    /// Watches `descriptor` for `interest` (input, end of stream and errors by default); `token` comes back with
    /// its events.
    package func watch(_ descriptor: Int32, token: UInt64, for interest: Interest = .input) throws(SocketError) {
        var event = epoll_event()
        event.events = interest.rawValue
        event.data.u64 = token
        guard epoll_ctl(fd, EPOLL_CTL_ADD, descriptor, &event) == 0 else { throw .lastError("epoll_ctl") }
    }

    /// Changes what a watched `descriptor` reports.
    func change(_ descriptor: Int32, token: UInt64, to interest: Interest) {
        var event = epoll_event()
        event.events = interest.rawValue
        event.data.u64 = token
        _ = epoll_ctl(fd, EPOLL_CTL_MOD, descriptor, &event)
    }

    /// Moves `descriptor` from watching `old` to watching `new`, which may be empty: then it is not watched at all,
    /// since epoll reports errors and hang-ups whatever the interest, and a level-triggered hang-up nobody acts on
    /// would wake every wait.
    func update(_ descriptor: Int32, token: UInt64, from old: Interest, to new: Interest) {
        guard old != new else { return }
        if new.isEmpty {
            forget(descriptor)
        } else if old.isEmpty {
            try? watch(descriptor, token: token, for: new)
        } else {
            change(descriptor, token: token, to: new)
        }
    }

    /// Stops watching `descriptor` (before it is handed to another owner; a closed descriptor leaves by itself).
    func forget(_ descriptor: Int32) {
        var event = epoll_event()
        _ = epoll_ctl(fd, EPOLL_CTL_DEL, descriptor, &event)
    }

    /// epoll_wait(2) for up to `timeoutMillis`; returns the tokens of the descriptors that are ready, in
    /// `tokens` (which it empties first). `EINTR` counts as a wake with nothing ready.
    package func wait(
        into tokens: inout [UInt64], events: UnsafeMutableBufferPointer<epoll_event>, timeoutMillis: Int32
    ) {
        tokens.removeAll(keepingCapacity: true)
        let count = epoll_wait(fd, events.baseAddress, Int32(events.count), timeoutMillis)
        guard count > 0 else { return }
        for index in 0..<Int(count) { tokens.append(events[index].data.u64) }
    }

    /// close(2).
    package func close() {
        _ = Glibc.close(fd)
    }
}
