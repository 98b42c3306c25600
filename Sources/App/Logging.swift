import ArgumentParser
import Foundation
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
        FileHandle.standardError.write(Self.line(for: event, handlerMetadata: metadata))
    }

    /// UTC with milliseconds, e.g. `2026-11-26T17:56:07.535Z`.
    private static let timeStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// The JSON line for `event`, newline included.
    static func line(for event: LogEvent, handlerMetadata: Logger.Metadata) -> Data {
        var object: [String: Any] = [
            "time": timeStyle.format(Date()),
            "level": event.level.rawValue,
            "source": event.source,
            "message": event.message.description,
        ]
        if let error = event.error { object["error"] = "\(error)" }
        let merged = handlerMetadata.merging(event.metadata ?? [:]) { $1 }
        if !merged.isEmpty { object["metadata"] = merged.mapValues(\.description) }
        let json =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data(#"{"message":"unencodable log event"}"#.utf8)
        return json + Data("\n".utf8)
    }
}
