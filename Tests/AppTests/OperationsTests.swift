import Foundation
import Logging
import Mux
import Testing

@testable import App

@Suite struct OperationsTests {
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
