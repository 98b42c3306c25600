import Glibc
import Logging

/// A listening socket and the one thread that accepts on it.
///
/// Ownership: the accept thread is the only user of the socket while it runs, and closes it once `stop()` has woken
/// it (see `ServedSocket`).
package final class Listener: Sendable {
    /// The address actually bound (with the real port when port 0 was asked for).
    package let endpoint: Endpoint
    private let served: ServedSocket
    private let failures = LogThrottle()

    /// Binds and listens now, so that a port in use is reported before anything starts.
    package init(endpoint requested: Endpoint) throws(ListenError) {
        let socket = try Socket.listen(on: requested)
        endpoint = socket.localEndpoint
        served = ServedSocket(socket)
    }

    /// Starts the accept thread; `handle` is called on it for each new connection and must not block.
    package func start(logger: Logger, handle: @escaping @Sendable (Socket) -> Void) throws(ThreadError) {
        try served.start(named: "accept") { self.acceptLoop(logger: logger, handle: handle) }
    }

    /// Stops accepting and waits (briefly) for the accept thread to end. Idempotent.
    package func stop() {
        served.stop()
    }

    /// Stops accepting without waiting for the accept thread, which closes the socket soon after: for threads
    /// that must not block. Idempotent.
    package func requestStop() {
        served.requestStop()
    }

    private func acceptLoop(logger: Logger, handle: @Sendable (Socket) -> Void) {
        while true {
            do {
                let client = try served.socket.accept()
                handle(client)
            } catch {
                if served.isStopping { return }
                // Out of descriptors or memory: existing streams keep running; accept again shortly.
                failures.log(logger, level: .error, "accept on \(endpoint) failed: \(error); retrying every 100 ms")
                sleep(seconds: 0.1)
            }
        }
    }
}
