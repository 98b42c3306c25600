import Foundation
import Logging
import Mux
import Testing

@testable import App

@Suite(.serialized) struct OperationsTests {
    @Test func versionNamesTheReleaseTheCommitAndLibsodium() {
        let version = TCPTunnel.configuration.version
        let pattern = #/^tcptunnel \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}|unknown), libsodium \d+\.\d+\.\d+\)$/#
        #expect(version.wholeMatch(of: pattern) != nil, "\(version)")
    }

    @Test func jsonLogLineIsOneObjectWithTimeLevelSourceMessageAndMetadata() throws {
        let event = LogEvent(
            level: .warning, message: "link down: \"quoted\"\nsecond line", metadata: ["link": "127.0.0.1:7000"],
            source: "Mux", file: #fileID, function: #function, line: #line)
        let line = JSONLogHandler.line(for: event, handlerMetadata: ["agent": "local"])
        #expect(line.last == UInt8(ascii: "\n"))
        #expect(line.dropLast().contains(UInt8(ascii: "\n")) == false)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
        #expect(object["level"] as? String == "warning")
        #expect(object["source"] as? String == "Mux")
        #expect(object["message"] as? String == "link down: \"quoted\"\nsecond line")
        #expect(object["metadata"] as? [String: String] == ["link": "127.0.0.1:7000", "agent": "local"])
        let time = try #require(object["time"] as? String)
        #expect(time.wholeMatch(of: #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/#) != nil, "\(time)")
    }

    @Test func metricsServerAnswersGetMetricsAndRefusesEverythingElse() throws {
        let exporter = MetricsExporter()
        exporter.metrics.recordRefusal(.notAllowed)
        let server = try MetricsServer(listen: Endpoint(host: "127.0.0.1", port: 0), exporter: exporter)
        try server.start(logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        defer { server.stop() }

        let metrics = try get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", from: server.endpoint)
        #expect(metrics.hasPrefix("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4"))
        #expect(metrics.contains("\ntcptunnel_streams_refused_total{reason=\"not_allowed\"} 1\n"))
        #expect(metrics.contains("\ntcptunnel_threads "))
        #expect(try get("GET / HTTP/1.0\r\n\r\n", from: server.endpoint).hasPrefix("HTTP/1.0 404 "))
        #expect(try get("POST /metrics HTTP/1.0\r\n\r\n", from: server.endpoint).hasPrefix("HTTP/1.0 405 "))
        #expect(exporter.summary().contains(#"streams_refused_total{reason="not_allowed"}=1"#))
    }

    /// The server's 5 s bound covers the whole request: a scraper sending a byte every 0.4 s (each recv well
    /// within any per-call timeout) is closed when it runs out, not kept for as long as it trickles.
    @Test func aScraperTricklingItsRequestIsClosedAtTheWholeRequestDeadline() throws {
        let server = try startedServer()
        defer { server.stop() }
        let socket = try Socket.connect(to: try server.endpoint.resolve(), timeout: 2)
        defer { socket.close() }
        let started = ContinuousClock.now
        let trickling = Locked(true)
        try startThread(named: "trickle") {
            for byte in Array("GET /metrics HTTP/1.0\r\nX-Padding: ".utf8) + [UInt8](repeating: 65, count: 100) {
                guard trickling.withLock({ $0 }), (try? socket.sendAll([byte])) != nil else { return }
                Thread.sleep(forTimeInterval: 0.4)
            }
        }
        defer { trickling.withLock { $0 = false } }
        socket.setReceiveTimeout(seconds: 10)
        var byte = [UInt8](repeating: 0, count: 1)
        let received = try? byte.withUnsafeMutableBytes { try socket.receive(into: $0) }
        let waited = ContinuousClock.now - started
        #expect(received == 0 || received == nil, "the trickling scraper got a response")
        #expect(waited > .seconds(4.5) && waited < .seconds(7), "closed after \(waited)")
    }

    /// Silent scrapers take at most `maxScrapes` threads; one more is closed at once rather than given a thread,
    /// and once they go, a scrape is answered again.
    @Test func scrapesBeyondTheCapAreClosedAtOnceWithoutAThread() throws {
        let server = try startedServer()
        defer { server.stop() }
        let silent = try (0..<MetricsServer.maxScrapes).map { _ in
            try Socket.connect(to: try server.endpoint.resolve(), timeout: 2)
        }
        #expect(eventually { threadCount(named: "metrics-scrape") == MetricsServer.maxScrapes })
        let extra = try Socket.connect(to: try server.endpoint.resolve(), timeout: 2)
        defer { extra.close() }
        extra.setReceiveTimeout(seconds: 3)
        let started = ContinuousClock.now
        var byte = [UInt8](repeating: 0, count: 1)
        let received = try? byte.withUnsafeMutableBytes { try extra.receive(into: $0) }
        #expect(received == 0, "the scraper beyond the cap was not closed")
        #expect(ContinuousClock.now - started < .seconds(1))
        #expect(threadCount(named: "metrics-scrape") <= MetricsServer.maxScrapes)
        for socket in silent { socket.close() }
        #expect(eventually { threadCount(named: "metrics-scrape") == 0 })
        #expect(try get("GET /metrics HTTP/1.0\r\n\r\n", from: server.endpoint).hasPrefix("HTTP/1.0 200 OK"))
    }

    private func startedServer() throws -> MetricsServer {
        let server = try MetricsServer(listen: Endpoint(host: "127.0.0.1", port: 0), exporter: MetricsExporter())
        try server.start(logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        return server
    }

    /// This process's threads named `name`.
    private func threadCount(named name: String) -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.filter { task in
            let comm = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)
            return comm?.trimmingCharacters(in: .newlines) == name
        }.count
    }

    /// Whether `condition` holds within `seconds`.
    private func eventually(within seconds: Double = 5, _ condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return condition()
    }

    private func get(_ request: String, from endpoint: Endpoint) throws -> String {
        let socket = try Socket.connect(to: try endpoint.resolve(), timeout: 2)
        defer { socket.close() }
        socket.setReceiveTimeout(seconds: 5)
        try socket.sendAll(Array(request.utf8))
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while let count = try? buffer.withUnsafeMutableBytes({ try socket.receive(into: $0) }), count > 0 {
            response += buffer[..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }
}
