import Foundation
import Logging
import Mux

/// Runs one agent in the foreground until SIGINT or SIGTERM, then stops it cleanly and returns (exit status 0).
enum AgentRunner {
    /// `makeAgent` builds the agent, counting into the metrics it is given, and returns its start and stop
    /// functions; its errors end the process with one line on standard error. With `metricsEndpoint`, the
    /// metrics are served there in Prometheus format; SIGUSR1 logs them as one line either way.
    static func run(
        logLevel: Logger.Level, logFormat: LogFormat, metricsEndpoint: Endpoint?,
        makeAgent: (Logger, AgentMetrics) throws -> (start: () throws -> Void, stop: () -> Void)
    ) throws {
        Signals.prepare()
        Signals.raiseOpenFileLimit()
        let logger = bootstrapLogging(level: logLevel, format: logFormat)
        let exporter = MetricsExporter()
        let server = try metricsEndpoint.map { endpoint throws(AgentError) in
            try MetricsServer(listen: endpoint, exporter: exporter)
        }
        let agent = try makeAgent(logger, exporter.metrics)
        try agent.start()
        try server?.start(logger: logger)
        SystemdNotifier.notify("READY=1")
        while true {
            switch Signals.waitForRequest() {
            case .logMetrics:
                logger.info("metrics: \(exporter.summary())")
            case .stop(let signal):
                logger.info("received \(signal); shutting down")
                SystemdNotifier.notify("STOPPING=1")
                server?.stop()
                agent.stop()
                logger.info("stopped")
                return
            }
        }
    }
}
