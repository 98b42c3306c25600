import Mux

/// Sends a block, half-closes, and counts what comes back before the end of the stream: a tunnel
/// that turns the client's FIN into a full close loses the echo still in flight.
enum HalfCloseCheck {
    static let blockSize = 1 << 20

    static func run(entry: Endpoint, pattern: TestPattern) throws(BenchError) -> HalfCloseReport {
        let connection = try LoadConnection.open(to: entry)
        defer { connection.close() }
        let failure = pattern.withBytes(at: 0, upTo: blockSize) { bytes -> SocketError? in
            do throws(SocketError) {
                try connection.socket.sendAll(bytes)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw BenchError("half-close check: send failed: \(failure)") }
        connection.socket.shutdown(.write)
        let received = connection.drainToEnd().bytes
        return HalfCloseReport(sent: blockSize, receivedBeforeEnd: received, intact: received == blockSize)
    }
}
