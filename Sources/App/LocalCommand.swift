import ArgumentParser
import Mux

/// `tcptunnel local`: accepts clients and carries them to the remote agent.
struct LocalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local",
        abstract: "Run the local agent: accept clients and tunnel each one to the remote agent.",
        discussion: """
            The remote agent is given as --remote HOST:PORT, or, as in the original tcptunnel, as two arguments: tcptunnel local REMOTE-HOST REMOTE-PORT.
            """
    )

    @Argument(help: ArgumentHelp("Remote agent host (same as --remote HOST:PORT).", valueName: "remote-host"))
    var remoteHost: String?

    @Argument(help: ArgumentHelp("Remote agent port.", valueName: "remote-port"))
    var remotePort: String?

    @Option(name: .long, help: ArgumentHelp("Address clients connect to.", valueName: "host:port"))
    var listen: String = "127.0.0.1:1082"

    @Option(name: .long, help: ArgumentHelp("Address of the remote agent.", valueName: "host:port"))
    var remote: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Seconds a new client waits for the link to come up before it is closed.", valueName: "seconds"))
    var linkWaitTimeout: Double = TunnelSettings().linkWaitTimeout

    @OptionGroup var common: CommonOptions

    mutating func validate() throws {
        _ = try remoteEndpoint()
        _ = try Endpoint(parsingArgument: listen, option: "--listen")
        guard linkWaitTimeout > 0 else { throw ValidationError("--link-wait-timeout must be more than 0 seconds") }
        guard common.keyFile.count <= 1 else {
            throw ValidationError(
                "the local agent uses one key: give --key-file once (during a rotation the remote agent takes both)")
        }
    }

    func run() throws {
        try reportingErrors {
            let key = try common.loadKeys()[0]
            var settings = common.settings
            settings.linkWaitTimeout = linkWaitTimeout
            try AgentRunner.run(logLevel: common.logLevel.level) { logger in
                let agent = try LocalAgent(
                    listen: try Endpoint(parsingArgument: listen, option: "--listen"), remote: try remoteEndpoint(),
                    key: key, settings: settings, logger: logger)
                return (agent.start, agent.stop)
            }
        }
    }

    func remoteEndpoint() throws -> Endpoint {
        switch (remoteHost, remotePort, remote) {
        case (nil, nil, let remote?):
            return try Endpoint(parsingArgument: remote, option: "--remote")
        case (let host?, let port?, nil):
            return try Endpoint(host: host, portArgument: port)
        case (nil, nil, nil):
            throw ValidationError("missing the remote agent: pass --remote HOST:PORT (or REMOTE-HOST REMOTE-PORT)")
        case (_, nil, _):
            throw ValidationError("missing REMOTE-PORT after REMOTE-HOST")
        default:
            throw ValidationError(
                "give the remote agent either as --remote HOST:PORT or as REMOTE-HOST REMOTE-PORT, not both")
        }
    }
}
