import CoreMetrics
import Crypto
import Logging

/// Relaying strangers to the cover (TLS transport).
extension GateLoop {
    /// Hands pending `fd`, which is not a local agent's, to the cover with what it sent so far, and counts why.
    /// Without a connection to the cover (it failed at once, twice) the stranger is closed, as the cover's port
    /// would have refused it.
    mutating func relay(
        _ fd: Int32, _ connection: PendingConnection, as reason: HandshakeRejection, detail: String
    ) {
        guard case .tls(let hello, let started) = connection.opening else {
            preconditionFailure("only the TLS transport relays")
        }
        table.remove(fd)
        connections[fd] = nil
        forgetCover(of: connection)
        count(reason)
        guard let cover = started ?? connectCover() else {
            gate.logger.debug("connection from \(connection.peerEndpoint) closed: the cover cannot be reached")
            return connection.socket.close()
        }
        let now = MonotonicClock.nanoseconds()
        let relay = CoverRelay(client: connection.socket, cover: cover, received: hello.received, now: now)
        let source = ConnectionSource(addressBytes: connection.proxiedSource?.bytes ?? connection.peer.addressBytes)
        if let shed = relays.add(relay, from: source, now: now, epoll: epoll, using: &generator) {
            shed.close(abort: true)
        }
        gate.metrics.coverRelays.record(relays.count)
        gate.logger.debug("connection from \(connection.peerEndpoint) relayed to the cover (\(reason)): \(detail)")
    }

    /// Moves what the relay side `fd` being ready allows; ends the relay when both sides are done, or one failed.
    mutating func serveRelay(_ fd: Int32) {
        guard let client = relays.clientDescriptor(of: fd) else { return }
        let side: CoverRelay.Side = fd == client ? .client : .cover
        let now = MonotonicClock.nanoseconds()
        let outcome = relayBuffer.withUnsafeMutableBytes { buffer in
            relays.update(client, epoll: epoll) { $0.serve(side, buffer: buffer, now: now) }
        }
        switch outcome {
        case .running?, nil: return
        case .finished?: endRelay(client, abort: false)
        case .failed?: endRelay(client, abort: true)
        }
    }

    /// Closes the relay of client descriptor `fd`, with a reset when `abort`.
    mutating func endRelay(_ fd: Int32, abort: Bool) {
        relays.remove(fd)?.close(abort: abort)
        gate.metrics.coverRelays.record(relays.count)
    }
}
