import ArgumentParser
import FoundationEssentials
import Logging

/// How log lines are written on standard error.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    /// One human-readable line per event (swift-log's standard format).
    case text
    /// One JSON object per line, for journald, Loki or jq: `time`, `level`, `source`, `message`, and the event's
    /// metadata (such as `link`) under `metadata`.
    case json
}

/// Installs the process-wide log handler: one line per event on standard error, at `level` and above.
/// Call once, before any agent starts.
func bootstrapLogging(level: Logger.Level, format: LogFormat = .text) -> Logger {
    LoggingSystem.bootstrap { label in
        var handler: any LogHandler =
            switch format {
            case .text: StreamLogHandler.standardError(label: label)
            case .json: JSONLogHandler()
            }
        handler.logLevel = level
        return handler
    }
    var logger = Logger(label: "tcptunnel")
    logger.logLevel = level
    return logger
}

/// Writes each event as one JSON object on its own line of standard error, with a single write(2) so that lines
/// from different threads never interleave.
struct JSONLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        StandardStreams.write(Self.line(for: event, handlerMetadata: metadata), to: 2)
    }

    /// UTC with milliseconds, e.g. `2026-11-26T17:56:07.535Z`.
    private static let timeStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// One log line's fields, in the JSON object's (sorted) key order.
    private struct Line: Encodable {
        let error: String?
        let level: String
        let message: String
        let metadata: [String: String]?
        let source: String
        let time: String
    }

    private static let encoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// The JSON line for `event`, newline included.
    static func line(for event: LogEvent, handlerMetadata: Logger.Metadata) -> [UInt8] {
        let merged = handlerMetadata.merging(event.metadata ?? [:]) { $1 }
        let line = Line(
            error: event.error.map { "\($0)" }, level: event.level.rawValue, message: event.message.description,
            metadata: merged.isEmpty ? nil : merged.mapValues(\.description), source: event.source,
            time: timeStyle.format(Date()))
        let json = (try? encoder.encode(line)).map(Array.init) ?? Array(#"{"message":"unencodable log event"}"#.utf8)
        return json + [UInt8(ascii: "\n")]
    }
}
