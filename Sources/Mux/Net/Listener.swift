import Foundation
import Logging

/// A listening socket and the one thread that accepts on it.
///
/// Ownership: the accept thread is the only user of `socket` while it runs; the socket is closed once, by that
/// thread, after `stop()` has woken it.
package final class Listener: Sendable {
    /// The address actually bound (with the real port when port 0 was asked for).
    package let endpoint: Endpoint
    private let socket: Socket
    private enum Phase {
        case bound, accepting, stopping
    }
    private let phase = Locked(Phase.bound)
    private let stopped = Completion()
    private let failures = LogThrottle()

    /// Binds and listens now, so that a port in use is reported before anything starts.
    package init(endpoint requested: Endpoint) throws(AgentError) {
        socket = try Socket.listen(on: requested)
        endpoint = socket.localEndpoint
    }

    /// Starts the accept thread; `handle` is called on it for each new connection and must not block.
    package func start(logger: Logger, handle: @escaping @Sendable (Socket) -> Void) throws(ThreadError) {
        phase.withLock { $0 = .accepting }
        do {
            try startThread(named: "accept") {
                self.acceptLoop(logger: logger, handle: handle)
                self.socket.close()
                self.stopped.complete()
            }
        } catch {
            phase.withLock { $0 = .bound }
            throw error
        }
    }

    /// Stops accepting and waits (briefly) for the accept thread to end. Idempotent.
    package func stop() {
        let previous = phase.withLock { phase in
            defer { phase = .stopping }
            // Under the lock: the accept thread closes the socket only after it has read `.stopping` under this
            // same lock, so the shutdown cannot reach a descriptor already closed (and perhaps reused).
            if phase == .accepting { socket.shutdown(.both) }  // wakes accept(2) with EINVAL; close(2) would not
            return phase
        }
        switch previous {
        case .bound: socket.close()  // no accept thread to hand the socket to
        case .accepting: stopped.wait(seconds: 2)
        case .stopping: break
        }
    }

    private func acceptLoop(logger: Logger, handle: @Sendable (Socket) -> Void) {
        while true {
            do {
                let client = try socket.accept()
                handle(client)
            } catch {
                if phase.withLock({ $0 == .stopping }) { return }
                // Out of descriptors or memory: existing streams keep running; accept again shortly.
                failures.log(logger, level: .error, "accept on \(endpoint) failed: \(error); retrying every 100 ms")
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
    }
}
