/// A listening socket that one thread serves and alone closes, and the stop that wakes that thread: what a
/// `Listener` and the remote agent's handshake stage share.
///
/// Ownership: while the serving thread runs, it is the socket's only user, and it closes the socket once its
/// work returns. `stop()` never closes a served socket itself (the descriptor could be reused while the thread
/// still uses the number); it shuts the socket down, which wakes accept(2) and epoll_wait(2), under the lock
/// the thread reads `isStopping` through, so the shutdown can never reach a descriptor already closed.
package final class ServedSocket: Sendable {
    /// The listening socket.
    let socket: Socket
    private enum Phase {
        case bound, serving, stopping
    }
    private let phase = Locked(Phase.bound)
    private let finished = Completion()

    /// Takes ownership of `socket`, a bound and listening socket nothing serves yet.
    init(_ socket: Socket) {
        self.socket = socket
    }

    /// Runs `serve` on a new thread named `name`; when `serve` returns (it should once `isStopping`), the thread
    /// closes the socket. If no thread can be started, the socket stays bound for `stop()` to close.
    func start(named name: String, _ serve: @escaping @Sendable () -> Void) throws(ThreadError) {
        phase.withLock { $0 = .serving }
        do {
            try startThread(named: name) { [self] in
                serve()
                socket.close()
                finished.complete()
            }
        } catch {
            phase.withLock { $0 = .bound }
            throw error
        }
    }

    /// Whether `stop()` was called: the serving thread's cue to return.
    var isStopping: Bool { phase.withLock { $0 == .stopping } }

    /// Wakes the serving thread and waits (up to 2 s) for it to close the socket, so that the port is free when
    /// this returns; or closes the socket itself if no thread serves it. Idempotent.
    func stop() {
        if requestStop() { finished.wait(seconds: 2) }
    }

    /// Wakes the serving thread, which closes the socket soon after, without waiting for it: for threads that
    /// must never block (a link's reader). Closes the socket itself if no thread serves it. Idempotent; returns
    /// whether a serving thread was woken.
    @discardableResult
    func requestStop() -> Bool {
        let previous = phase.withLock { phase in
            defer { phase = .stopping }
            if phase == .serving { socket.shutdown(.both) }  // close(2) would not wake the thread
            return phase
        }
        if previous == .bound { socket.close() }
        return previous == .serving
    }
}
