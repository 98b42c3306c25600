import ArgumentParser
import Mux

/// `tcptunnel remote`: accepts links from local agents and connects their streams to the target.
struct RemoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remote",
        abstract: "Run the remote agent: accept links from local agents and connect each stream to the target.",
        discussion: """
            The address to listen on is given as --listen HOST:PORT, or, as in the original tcptunnel, as two arguments: tcptunnel remote BIND-HOST BIND-PORT. The port is meant to be reachable by local agents; it answers nothing to a peer without the key.
            """
    )

    @Argument(help: ArgumentHelp("Host to listen on (same as --listen HOST:PORT).", valueName: "bind-host"))
    var bindHost: String?

    @Argument(help: ArgumentHelp("Port to listen on.", valueName: "bind-port"))
    var bindPort: String?

    @Option(name: .long, help: ArgumentHelp("Address local agents connect to.", valueName: "host:port"))
    var listen: String?

    @Option(name: .long, help: ArgumentHelp("Address of the target server.", valueName: "host:port"))
    var target: String = "127.0.0.1:1081"

    @OptionGroup var common: CommonOptions

    mutating func validate() throws {
        _ = try listenEndpoint()
        _ = try Endpoint(parsingArgument: target, option: "--target")
    }

    func run() throws {
        try reportingErrors {
            let keys = try common.loadKeys()
            try AgentRunner.run(logLevel: common.logLevel.level) { logger in
                let agent = try RemoteAgent(
                    listen: try listenEndpoint(), target: try Endpoint(parsingArgument: target, option: "--target"),
                    keys: keys, settings: common.settings, logger: logger)
                return (agent.start, agent.stop)
            }
        }
    }

    func listenEndpoint() throws -> Endpoint {
        switch (bindHost, bindPort, listen) {
        case (nil, nil, let listen?):
            return try Endpoint(parsingArgument: listen, option: "--listen")
        case (let host?, let port?, nil):
            return try Endpoint(host: host, portArgument: port)
        case (nil, nil, nil):
            throw ValidationError("missing the address to listen on: pass --listen HOST:PORT (or BIND-HOST BIND-PORT)")
        case (_, nil, _):
            throw ValidationError("missing BIND-PORT after BIND-HOST")
        default:
            throw ValidationError(
                "give the listen address either as --listen HOST:PORT or as BIND-HOST BIND-PORT, not both")
        }
    }
}
