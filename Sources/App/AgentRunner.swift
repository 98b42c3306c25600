import Foundation
import Logging
import Mux

/// Runs one agent in the foreground until SIGINT or SIGTERM, then stops it cleanly and returns (exit status 0).
enum AgentRunner {
    /// `makeAgent` builds the agent and returns its start and stop functions; its errors end the process with
    /// one line on standard error.
    static func run(
        logLevel: Logger.Level, logFormat: LogFormat,
        makeAgent: (Logger) throws -> (start: () throws -> Void, stop: () -> Void)
    ) throws {
        Signals.prepare()
        Signals.raiseOpenFileLimit()
        let logger = bootstrapLogging(level: logLevel, format: logFormat)
        let agent = try makeAgent(logger)
        try agent.start()
        let signal = Signals.waitForTermination()
        logger.info("received \(signal); shutting down")
        agent.stop()
        logger.info("stopped")
    }
}
