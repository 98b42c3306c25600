import Glibc
import Mux

/// The benchmark target's UDP side, on the same address and port as its TCP echo: every datagram goes back, whole,
/// to whoever sent it. One thread; the socket is its until `stop()`, which shuts it down and lets it close it.
final class DatagramEcho: Sendable {
    private let socket: DatagramSocket
    private let stopping = Locked(false)

    /// Binds UDP on `endpoint` (the TCP echo's, with its real port).
    init(on endpoint: Endpoint) throws(BenchError) {
        do {
            socket = try DatagramSocket.bind(to: try endpoint.resolve(passive: true))
            socket.requestReceiveBuffer(DatagramStreamLoad.receiveBuffer)
        } catch {
            throw BenchError("echo target cannot take UDP on \(endpoint): \(error)")
        }
    }

    /// Starts echoing on a thread of its own.
    func start() throws(BenchError) {
        do {
            try startThread(named: "echo-udp") { [self] in
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
                defer { buffer.deallocate() }
                while let (count, sender) = try? socket.receive(into: buffer) {
                    if count == 0, stopping.withLock({ $0 }) { break }
                    _ = try? socket.send(
                        UnsafeRawBufferPointer(rebasing: buffer[..<min(count, buffer.count)]), to: sender)
                }
                socket.close()
            }
        } catch {
            throw BenchError("echo target: \(error)")
        }
    }

    /// Stops echoing.
    func stop() {
        stopping.withLock { $0 = true }
        socket.shutdown()
    }
}
