import ArgumentParser
import Crypto

/// The `tcptunnel` command: one encrypted, multiplexed TCP link between a local and a remote agent.
@main
struct TCPTunnel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcptunnel",
        abstract: "Carry many TCP connections over one encrypted, multiplexed link.",
        discussion: """
            client => local agent ==(one encrypted link)==> remote agent => target server

            Run `tcptunnel remote` next to the target server, `tcptunnel local` next to the clients, with the same key on both (make one with `tcptunnel keygen --out FILE`). Clients then connect to the local agent's --listen address as if it were the target.
            """,
        version: "tcptunnel \(version) (commit \(buildCommit), libsodium \(Sodium.version))",
        subcommands: [
            LocalCommand.self, RemoteCommand.self, KeygenCommand.self, BenchCommand.self, BenchTargetCommand.self,
        ]
    )

    /// The release version: `scripts/release` names the package after it.
    static let version = "0.7.0"
}
