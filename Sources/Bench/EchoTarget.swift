import Glibc
import Mux

/// The benchmark's target server: echoes every byte back on the connection it came from, answers the
/// client's FIN with its own once all is echoed, one thread per connection. A connection that opens with
/// `ResponseProtocol.greeting` is served responses of the sizes it asks for instead.
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
        guard let (count, greeted) = readOpening(of: socket, into: buffer) else { return socket.shutdown(.write) }
        if greeted {
            return serveResponses(on: socket, buffer: buffer, leftover: count - ResponseProtocol.greeting.count)
        }
        guard (try? socket.sendAll(UnsafeRawBufferPointer(rebasing: buffer[..<count]))) != nil else { return }
        while let n = try? socket.receive(into: buffer), n > 0 {
            guard (try? socket.sendAll(UnsafeRawBufferPointer(rebasing: buffer[..<n]))) != nil else { return }
        }
        socket.shutdown(.write)
    }

    /// Reads until the connection's first bytes are known to be the responses greeting or not (nothing may be
    /// echoed before that): returns how many bytes `buffer` holds and whether they begin with the greeting, or
    /// nil when the connection ended first.
    private static func readOpening(of socket: Socket, into buffer: UnsafeMutableRawBufferPointer) -> (Int, Bool)? {
        let greeting = ResponseProtocol.greeting
        var count = 0
        repeat {
            guard let n = try? socket.receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[count...])), n > 0
            else { return nil }
            count += n
            let compared = min(count, greeting.count)
            guard greeting.withUnsafeBytes({ memcmp($0.baseAddress!, buffer.baseAddress!, compared) }) == 0 else {
                return (count, false)
            }
        } while count < greeting.count
        return (count, true)
    }

    /// Answers each request with its response until the client ends the connection or asks for a size out of
    /// range, each response in one send and without Nagle's delay, as a web server's keep-alive connection does.
    /// `leftover` bytes after the greeting are already in `buffer`.
    private static func serveResponses(on socket: Socket, buffer: UnsafeMutableRawBufferPointer, leftover: Int) {
        socket.setNoDelay()
        let size = ResponseProtocol.requestSize
        var request = [UInt8](
            UnsafeRawBufferPointer(rebasing: buffer[ResponseProtocol.greeting.count...].prefix(leftover)))
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
