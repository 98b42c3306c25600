import Glibc
import Mux

/// The benchmark's target server: echoes every byte back on the connection it came from, answers the
/// client's FIN with its own once all is echoed, one thread per connection. A connection that opens with
/// `ResponseProtocol.greeting` gets the greeting echoed, then responses of the sizes it asks for. On the same
/// port, UDP datagrams are echoed too (`DatagramEcho`).
///
/// The accept thread owns the listening socket until `stop()`; each connection thread owns its socket.
public final class EchoTarget: Sendable {
    /// The address it listens on (with the port the system chose when asked for port 0).
    public let endpoint: Endpoint
    private let listener: Socket
    private let datagrams: DatagramEcho

    /// Listens on `endpoint`, TCP and UDP; call `start()` to serve.
    public init(listeningOn endpoint: Endpoint) throws(BenchError) {
        do {
            listener = try Socket.listen(on: try endpoint.resolve(passive: true))
        } catch {
            throw BenchError("echo target cannot listen on \(endpoint): \(error)")
        }
        self.endpoint = listener.localEndpoint
        do {
            datagrams = try DatagramEcho(on: self.endpoint)
        } catch {
            listener.close()
            throw error
        }
    }

    /// Starts accepting, and echoing datagrams, on threads of their own.
    public func start() throws(BenchError) {
        try datagrams.start()
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

    /// Stops accepting and echoing datagrams; connections already open run to their end.
    public func stop() {
        listener.shutdown(.both)
        datagrams.stop()
    }

    private static func echo(_ socket: Socket) {
        defer { socket.close() }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        let greeting = ResponseProtocol.greeting
        // How much of the greeting the connection opened with so far; nil once its opening differs.
        var greeted: Int? = 0
        while let n = try? socket.receive(into: buffer), n > 0 {
            var echoed = n
            if let matched = greeted {
                let compared = min(n, greeting.count - matched)
                let same = greeting.withUnsafeBytes { memcmp($0.baseAddress! + matched, buffer.baseAddress!, compared) }
                greeted = same == 0 ? matched + compared : nil
                if greeted == greeting.count { echoed = compared }
            }
            guard (try? socket.sendAll(UnsafeRawBufferPointer(rebasing: buffer[..<echoed]))) != nil else { return }
            if greeted == greeting.count {
                let pending = Array(UnsafeRawBufferPointer(rebasing: buffer[echoed..<n]))
                return serveResponses(on: socket, buffer: buffer, pending: pending)
            }
        }
        socket.shutdown(.write)
    }

    /// Answers each request with its response until the client ends the connection or asks for a size out of
    /// range, each response in one send and without Nagle's delay, as a web server's keep-alive connection does.
    /// `pending` holds the bytes that came after the greeting.
    private static func serveResponses(on socket: Socket, buffer: UnsafeMutableRawBufferPointer, pending: [UInt8]) {
        socket.setNoDelay()
        let size = ResponseProtocol.requestSize
        var request = pending
        var response: [UInt8] = []
        while true {
            while request.count < size {
                guard let n = try? socket.receive(into: buffer), n > 0 else { return socket.shutdown(.write) }
                request += UnsafeRawBufferPointer(rebasing: buffer[..<n])
            }
            guard let length = request.withUnsafeBytes({ ResponseProtocol.responseSize(of: $0) }) else { return }
            if response.count != length { response = ResponseProtocol.body(count: length, pattern: pattern) }
            response.replaceSubrange(0..<size, with: request[..<size])
            request.removeFirst(size)
            guard (try? socket.sendAll(response)) != nil else { return }
        }
    }

    /// What follows the request's echo in every response.
    private static let pattern = TestPattern()
}
