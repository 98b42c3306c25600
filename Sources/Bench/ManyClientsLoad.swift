import CLinux
import Glibc
import Mux

/// Many clients of small requests, driven as an event-driven load tool (a database's benchmark, wrk) drives
/// them: one thread and epoll over every connection, each sending its next request as soon as the echo of the
/// last is whole. Unlike `RequestLoad`, which spends a thread per stream, the load itself costs little CPU, so
/// what each route spends per request shows in the rate.
enum ManyClientsLoad {
    /// Runs the load; `usage` reads what the route's processes used so far (nil when it has none), once all
    /// clients are connected and again before any closes, so that no thread's start or end is counted.
    static func run(
        entry: Endpoint, clients: Int, seconds: Double, messageSize: Int, usage: () -> [ProcessUsageReading]?
    ) throws(BenchError) -> ClientsReport {
        var connections: [Client] = []
        defer { for client in connections { client.connection.close() } }
        for index in 0..<clients {
            connections.append(Client(connection: try LoadConnection.open(to: entry), index: index, size: messageSize))
        }
        let epoll: Epoll
        do {
            epoll = try Epoll()
            for client in connections {
                client.connection.socket.setNoDelay()
                try epoll.watch(client.connection.socket.fd, token: UInt64(client.index))
            }
        } catch {
            throw BenchError("load generator: \(error)")
        }
        defer { epoll.close() }
        let usageBefore = usage()
        let deadline = ContinuousClock.now + .seconds(seconds)
        var latencies: [Double] = []
        var failure: String?
        var waiting = 0
        for index in connections.indices {
            guard connections[index].sendNext() else { throw BenchError("client \(index): the first request failed") }
            waiting += 1
        }
        let events = UnsafeMutableBufferPointer<epoll_event>.allocate(capacity: 256)
        defer { events.deallocate() }
        var ready: [UInt64] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        while waiting > 0, failure == nil {
            if ContinuousClock.now > deadline + .seconds(LoadConnection.ioTimeout) {
                failure = "\(waiting) of \(clients) clients got no echo in time"
                break
            }
            epoll.wait(into: &ready, events: events, timeoutMillis: 100)
            for token in ready {
                let index = Int(token)
                switch connections[index].receive(into: buffer) {
                case .partial: continue
                case .failed(let reason):
                    failure = "client \(index): \(reason)"
                case .answered(let microseconds):
                    latencies.append(microseconds)
                    if ContinuousClock.now >= deadline {
                        waiting -= 1
                    } else if !connections[index].sendNext() {
                        failure = "client \(index): request \(connections[index].sequence) failed"
                    }
                }
            }
        }
        let used = usage().flatMap { after in
            usageBefore.map { before in
                zip(after, before).map { $0.since($1) }.reduce((0, 0.0)) { ($0.0 + $1.0, $0.1 + $1.1) }
            }
        }
        let requests = Double(max(1, latencies.count))
        latencies.sort()
        return ClientsReport(
            clients: clients, requestsPerSecond: Double(latencies.count) / seconds, count: latencies.count,
            p50Microseconds: RequestLoad.percentile(0.50, of: latencies),
            p99Microseconds: RequestLoad.percentile(0.99, of: latencies),
            contextSwitchesPerRequest: used.map { Double($0.0) / requests },
            cpuMicrosecondsPerRequest: used.map { $0.1 / requests * 1e6 },
            failure: failure)
    }

    /// One client's connection and its request in flight.
    private struct Client {
        let connection: LoadConnection
        let index: Int
        var request: [UInt8]
        var received = 0
        var sequence: UInt32 = 0
        var sentAt = ContinuousClock.now

        init(connection: LoadConnection, index: Int, size: Int) {
            self.connection = connection
            self.index = index
            request = [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: size)
        }

        enum Progress {
            case partial
            case answered(microseconds: Double)
            case failed(String)
        }

        /// Sends the next request, numbered (`RequestLoad.stamp`); false if it failed.
        mutating func sendNext() -> Bool {
            sequence &+= 1
            RequestLoad.stamp(sequence, into: &request)
            received = 0
            sentAt = .now
            return (try? connection.socket.sendAll(request)) != nil
        }

        /// Reads what is ready (the socket is readable) and checks it against the request's echo.
        mutating func receive(into buffer: UnsafeMutableRawBufferPointer) -> Progress {
            let wanted = request.count - received
            guard
                let n = try? connection.socket.receive(
                    into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<wanted])),
                n > 0
            else { return .failed("the connection ended or failed") }
            let matches = request.withUnsafeBytes { memcmp($0.baseAddress! + received, buffer.baseAddress!, n) == 0 }
            guard matches else { return .failed("wrong echo of request \(sequence)") }
            received += n
            guard received == request.count else { return .partial }
            return .answered(microseconds: sentAt.duration(to: .now).seconds * 1e6)
        }
    }
}
