import Mux

/// The benchmark's target server: echoes every byte back on the connection it came from, answers the
/// client's FIN with its own once all is echoed, one thread per connection.
///
/// The accept thread owns the listening socket until `stop()`; each connection thread owns its socket.
public final class EchoTarget: Sendable {
    /// The address it listens on (with the port the system chose when asked for port 0).
    public let endpoint: Endpoint
    private let listener: Socket

    /// Listens on `endpoint`; call `start()` to serve.
    public init(listeningOn endpoint: Endpoint) throws(BenchError) {
        do {
            listener = try Socket.listen(on: try endpoint.resolve(passive: true))
        } catch {
            throw BenchError("echo target cannot listen on \(endpoint): \(error)")
        }
        self.endpoint = listener.localEndpoint
    }

    /// Starts accepting on a thread of its own.
    public func start() throws(BenchError) {
        do {
            try startThread(named: "echo-accept") { [listener] in
                while let client = try? listener.accept() {
                    do {
                        try startThread(named: "echo", stackSize: Workers.stackSize) { Self.echo(client) }
                    } catch {
                        client.close()
                    }
                }
            }
        } catch {
            throw BenchError("echo target: \(error)")
        }
    }

    /// Stops accepting; connections already open run to their end.
    public func stop() {
        listener.shutdown(.both)
    }

    private static func echo(_ socket: Socket) {
        defer { socket.close() }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        while let n = try? socket.receive(into: buffer), n > 0 {
            guard (try? socket.sendAll(UnsafeRawBufferPointer(rebasing: buffer[..<n]))) != nil else { return }
        }
        socket.shutdown(.write)
    }
}
