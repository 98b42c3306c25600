import Logging

/// Installs the process-wide log handler: one line per event on standard error, at `level` and above.
/// Call once, before any agent starts.
func bootstrapLogging(level: Logger.Level) -> Logger {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    var logger = Logger(label: "tcptunnel")
    logger.logLevel = level
    return logger
}
