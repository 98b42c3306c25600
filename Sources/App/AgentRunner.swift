import ArgumentParser
import Logging
import Mux

/// Runs one agent in the foreground until SIGINT or SIGTERM, then stops it cleanly and returns (exit status 0).
enum AgentRunner {
    /// What a command hands the runner: how to start, stop and reload its agent.
    struct Agent {
        let start: () throws -> Void
        let stop: () -> Void
        /// Reads the configuration again and applies what a running agent can; says what it did. Throws, changing
        /// nothing, when the new configuration is not valid.
        let reload: () throws -> ReloadReport
    }

    /// `makeAgent` builds the agent, counting into the metrics it is given; its errors end the process with one
    /// line on standard error. With `metricsEndpoint`, the metrics are served there in Prometheus format;
    /// SIGUSR1 logs them as one line either way. SIGHUP reloads.
    /// A port that cannot be bound is reported with the option that asked for it, from `listenOptions` (each
    /// listening address and the option as the user wrote it).
    static func run(
        logLevel: Logger.Level, logFormat: LogFormat, metricsEndpoint: Endpoint?,
        listenOptions: [(endpoint: Endpoint, option: String)],
        makeAgent: (Logger, AgentMetrics) throws -> Agent
    ) throws {
        Signals.prepare()
        Signals.raiseOpenFileLimit()
        let logger = bootstrapLogging(level: logLevel, format: logFormat)
        let exporter = MetricsExporter()
        let server = try naming(metricsEndpoint.map { [(endpoint: $0, option: "--metrics \($0)")] } ?? []) {
            try metricsEndpoint.map { endpoint throws(AgentError) in
                try MetricsServer(listen: endpoint, exporter: exporter)
            }
        }
        let agent = try naming(listenOptions) { try makeAgent(logger, exporter.metrics) }
        try agent.start()
        try server?.start(logger: logger)
        SystemdNotifier.notify("READY=1")
        while true {
            switch Signals.waitForRequest() {
            case .logMetrics:
                logger.info("metrics: \(exporter.summary())")
            case .reload:
                SystemdNotifier.notify("RELOADING=1")
                do {
                    let report = try agent.reload()
                    exporter.recordReload(applied: report.succeeded)
                    report.log(to: logger)
                } catch {
                    exporter.recordReload(applied: false)
                    let message = (error as? ConfigError)?.description ?? TCPTunnel.message(for: error)
                    logger.error("reload failed, keeping the running configuration: \(message)")
                }
                SystemdNotifier.notify("READY=1")
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

    /// Runs `body`; a listening address it cannot bind becomes one line that starts with the option it came from.
    private static func naming<T>(_ options: [(endpoint: Endpoint, option: String)], _ body: () throws -> T) throws -> T
    {
        do {
            return try body()
        } catch AgentError.cannotListen(let endpoint, let cause) {
            guard let option = options.first(where: { $0.endpoint == endpoint })?.option else {
                throw AgentError.cannotListen(endpoint, cause)
            }
            throw ExitMessage("\(option): cannot listen on \(endpoint): \(cause)")
        }
    }

    /// The command as it would be parsed now: the same command line, with the config file read again.
    static func reparse<Command: ParsableCommand>(as type: Command.Type) throws -> Command {
        guard let command = try TCPTunnel.parse(withConfig: Array(CommandLine.arguments.dropFirst())) as? Command
        else { throw ExitMessage("the command line no longer names the same command") }
        return command
    }
}
