import ArgumentParser
import FoundationEssentials
import Logging
import Synchronization

/// How log lines are written on standard error.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    /// One human-readable line per event (swift-log's standard format).
    case text
    /// One JSON object per line, for journald, Loki or jq: `time`, `level`, `source`, `message`, and the event's
    /// metadata (such as `link`) under `metadata`.
    case json
}

/// Installs the process-wide log handler: one line per event on standard error, at `level` and above (until
/// `LogLevelSwitch.set` changes it, for a reload). Call once, before any agent starts.
func bootstrapLogging(level: Logger.Level, format: LogFormat = .text) -> Logger {
    LogLevelSwitch.set(level)
    LoggingSystem.bootstrap { label in
        switch format {
        case .text: SwitchedLevelHandler(base: StreamLogHandler.standardError(label: label))
        case .json: SwitchedLevelHandler(base: JSONLogHandler())
        }
    }
    return Logger(label: "tcptunnel")
}

/// The level every logger of the process logs at: one value, so that a reload changes it for the loggers the
/// agents already hold (each has its own copy of its handler).
enum LogLevelSwitch {
    private static let level = Atomic<UInt8>(0)

    /// The level in force.
    static var current: Logger.Level { Logger.Level.allCases[Int(level.load(ordering: .relaxed))] }

    /// Logs at `newLevel` and above from now on.
    static func set(_ newLevel: Logger.Level) {
        level.store(UInt8(Logger.Level.allCases.firstIndex(of: newLevel)!), ordering: .relaxed)
    }
}

/// A handler whose level is `LogLevelSwitch`'s; the rest is `base`'s.
struct SwitchedLevelHandler: LogHandler {
    var base: any LogHandler

    var logLevel: Logger.Level {
        get { LogLevelSwitch.current }
        set {}  // the switch alone sets it, for every logger at once
    }

    var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        base.log(event: event)
    }
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
