import ArgumentParser
import Bench
import Mux

/// `tcptunnel bench-target`: the benchmark's echo server, to run next to a remote agent on another
/// machine and attach to with `tcptunnel bench --target`.
struct BenchTargetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-target",
        abstract:
            "Run the benchmark's echo server (every byte back, FIN answered with FIN; UDP datagrams on the same port echoed) until SIGINT or SIGTERM."
    )

    @Option(name: .long, help: ArgumentHelp("Address to listen on.", valueName: "host:port"))
    var listen: String = "127.0.0.1:1081"

    func run() throws {
        try reportingErrors {
            Signals.prepare()
            Signals.raiseOpenFileLimit()
            let target = try EchoTarget(listeningOn: try Endpoint(parsingArgument: listen, option: "--listen"))
            try target.start()
            StandardStreams.error("echo target listening on \(target.endpoint)\n")
            _ = Signals.waitForTermination()
            target.stop()
        }
    }
}
