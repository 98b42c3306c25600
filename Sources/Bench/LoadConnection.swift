import Glibc
import Mux

/// One client connection of the load generator, with the helpers every load needs.
struct LoadConnection {
    /// Seconds a send or receive may make no progress before the load counts the stream as failed.
    static let ioTimeout: Double = 30

    let socket: Socket

    /// Connects to `entry`, giving up after `timeout` seconds; sends and receives then fail after
    /// `ioTimeout` seconds without progress, so no load can hang on a stuck tunnel.
    static func open(to entry: Endpoint, timeout: Double = 10) throws(BenchError)
        -> LoadConnection
    {
        do {
            let socket = try Socket.connect(to: try entry.resolve(), timeout: timeout)
            socket.setReceiveTimeout(seconds: Self.ioTimeout)
            socket.setSendTimeout(seconds: Self.ioTimeout)
            return LoadConnection(socket: socket)
        } catch let error as SocketError {
            throw BenchError("cannot connect to \(entry): \(error)")
        } catch {
            throw BenchError("\(error)")
        }
    }

    /// Waits up to `milliseconds` for bytes (or the end of the stream) to read.
    func waitUntilReadable(milliseconds: Int32) -> Bool {
        var poller = pollfd(fd: socket.fd, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, milliseconds) > 0
    }

    /// Receives exactly `buffer.count` bytes; false if the connection ended or failed first.
    func receiveExactly(_ buffer: UnsafeMutableRawBufferPointer) -> Bool {
        var filled = 0
        while filled < buffer.count {
            guard let n = try? socket.receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...])),
                n > 0
            else { return false }
            filled += n
        }
        return true
    }

    /// Reads until the stream ends; returns how many bytes came first and whether it ended with the
    /// peer's FIN (rather than a reset or a timeout).
    func drainToEnd() -> (bytes: Int, clean: Bool) {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        var total = 0
        while true {
            guard let n = try? buffer.withUnsafeMutableBytes({ try socket.receive(into: $0) }) else {
                return (total, false)
            }
            if n == 0 { return (total, true) }
            total += n
        }
    }

    func close() { socket.close() }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }
}
