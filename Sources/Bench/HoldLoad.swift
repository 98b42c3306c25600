import Mux

/// Many concurrent streams through one link: opens `count` connections one after another (each proven
/// with a round trip), then, while all are open, makes a second round trip on every one.
enum HoldLoad {
    struct Outcome {
        var usable: Int
        var secondsToOpen: Double
        var firstFailure: String?
    }

    /// `whileAllOpen` runs once every connection is open, before the second round trips.
    static func run(entry: Endpoint, count: Int, progress: (String) -> Void, whileAllOpen: () -> Void) -> Outcome {
        var connections: [LoadConnection] = []
        connections.reserveCapacity(count)
        defer { for connection in connections { connection.close() } }
        var firstFailure: String?
        let started = ContinuousClock.now
        for index in 0..<count {
            do {
                let connection = try LoadConnection.open(to: entry)
                connections.append(connection)
                if let failure = roundTrip(on: connection, byte: UInt8(truncatingIfNeeded: index)) {
                    firstFailure = firstFailure ?? "stream \(index): \(failure)"
                }
            } catch {
                firstFailure = firstFailure ?? "stream \(index): \(error)"
                break
            }
            if (index + 1) % 1000 == 0 { progress("\(index + 1) streams open") }
        }
        let secondsToOpen = started.duration(to: .now).seconds
        whileAllOpen()
        var usable = 0
        for (index, connection) in connections.enumerated() {
            if let failure = roundTrip(on: connection, byte: UInt8(truncatingIfNeeded: index &+ 1)) {
                firstFailure = firstFailure ?? "stream \(index), second round trip: \(failure)"
            } else {
                usable += 1
            }
        }
        return Outcome(usable: usable, secondsToOpen: secondsToOpen, firstFailure: firstFailure)
    }

    private static func roundTrip(on connection: LoadConnection, byte: UInt8) -> String? {
        var buffer = [byte]
        do {
            try connection.socket.sendAll(buffer)
        } catch {
            return "send: \(error)"
        }
        guard buffer.withUnsafeMutableBytes({ connection.receiveExactly($0) }) else { return "no echo" }
        return buffer == [byte] ? nil : "wrong echo"
    }
}
