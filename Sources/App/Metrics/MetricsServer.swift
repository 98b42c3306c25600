import Logging
import Mux
import Prometheus

/// Serves an agent's metrics in Prometheus text format at `GET /metrics` (`--metrics HOST:PORT`): a minimal
/// HTTP/1.0 responder on its own listening socket. At most `maxScrapes` scrapes are answered at once, each on a
/// short-lived thread and within `scrapeDeadline` from its accept to its last byte, so neither many scrapers
/// nor a slow one can hold threads; a connection beyond the cap is closed at once (a scraper retries at its
/// next interval).
final class MetricsServer: Sendable {
    /// Where it listens.
    var endpoint: Endpoint { listener.endpoint }

    /// Scrapes answered at once: Prometheus scrapes one target once per interval, so a few is room to spare.
    static let maxScrapes = 4
    /// From accept to the response's last byte. Reading the request and writing the response (tens of KiB,
    /// which the socket's send buffer takes whole) takes milliseconds on any path a scraper uses.
    static let scrapeDeadline = Duration.seconds(5)

    private let listener: Listener
    private let exporter: MetricsExporter
    /// Scrapes being answered: a slot taken on the accept thread, released by the scrape's thread.
    private let scrapes = SlotCounter(limit: maxScrapes, purpose: "metrics scrapes in progress")

    /// Binds `listen` now, so that a port in use fails before the agent starts.
    init(listen: Endpoint, exporter: MetricsExporter) throws(AgentError) {
        do {
            listener = try Listener(endpoint: listen)
        } catch {
            throw AgentError(error)
        }
        self.exporter = exporter
    }

    /// Starts answering scrapes. Returns at once.
    func start(logger: Logger) throws(AgentError) {
        do {
            try listener.start(logger: logger) { [exporter, scrapes] client in
                let deadline = ContinuousClock.now + Self.scrapeDeadline
                guard scrapes.tryAcquire() else { return client.close() }
                do {
                    try startThread(named: "metrics-scrape") {
                        Self.answer(client, exporter: exporter, deadline: deadline)
                        scrapes.release()
                    }
                } catch {
                    scrapes.release()
                    client.close()
                }
            }
        } catch {
            throw .resources(error)
        }
        logger.info("serving metrics at http://\(listener.endpoint)/metrics")
    }

    /// Stops listening.
    func stop() {
        listener.stop()
    }

    /// Reads one request (at most 8 KiB) and answers it, then closes the connection; gives up at `deadline`,
    /// however the client trickles its bytes.
    private static func answer(_ client: Socket, exporter: MetricsExporter, deadline: ContinuousClock.Instant) {
        defer { client.close() }
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while request.count < buffer.count, !request.containsHeaderEnd {
            let remaining = deadline - .now
            guard remaining > .zero else { return }
            client.setReceiveTimeout(seconds: remaining.inSeconds)
            guard let count = try? buffer.withUnsafeMutableBytes({ try client.receive(into: $0) }), count > 0 else {
                return
            }
            request += buffer[..<count]
        }
        let requestLine = String(decoding: request.prefix { $0 != UInt8(ascii: "\r") }, as: UTF8.self)
        let parts = requestLine.split(separator: " ")
        let response: (status: String, type: String, body: [UInt8])
        if parts.count < 2 {
            response = ("400 Bad Request", "text/plain", Array("bad request\n".utf8))
        } else if parts[0] != "GET" {
            response = ("405 Method Not Allowed", "text/plain", Array("only GET\n".utf8))
        } else if parts[1] != "/metrics" {
            response = ("404 Not Found", "text/plain", Array("the metrics are at /metrics\n".utf8))
        } else {
            response = ("200 OK", "text/plain; version=0.0.4; charset=utf-8", exporter.exposition())
        }
        let header =
            "HTTP/1.0 \(response.status)\r\nContent-Type: \(response.type)\r\n"
            + "Content-Length: \(response.body.count)\r\nConnection: close\r\n\r\n"
        let remaining = deadline - .now
        guard remaining > .zero else { return }
        client.setSendTimeout(seconds: remaining.inSeconds)
        try? client.sendAll(Array(header.utf8) + response.body)
    }
}

extension [UInt8] {
    fileprivate var containsHeaderEnd: Bool {
        count >= 4 && (0...(count - 4)).contains { self[$0..<$0 + 4].elementsEqual([13, 10, 13, 10]) }
    }
}
