import ArgumentParser
import Crypto
import Foundation

/// The `tcptunnel` command: one encrypted, multiplexed TCP link between a local and a remote agent.
@main
struct TCPTunnel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcptunnel",
        abstract: "Carry many TCP connections over one encrypted, multiplexed link.",
        discussion: """
            client => local agent ==(one encrypted link)==> remote agent => target server

            Run `tcptunnel remote` next to the target server, `tcptunnel local` next to the clients, with the same key on both (make one with `tcptunnel keygen --out FILE`). Clients then connect to the local agent's --listen address as if it were the target. The local agent also takes ssh-style forwards (-L, -D for SOCKS5, -R), which the remote agent's --allow and --allow-listen rules must permit; both agents read --config FILE (TOML) and reload it on SIGHUP.
            """,
        version: "tcptunnel \(version) (commit \(buildCommit), libsodium \(Sodium.version))",
        subcommands: [
            LocalCommand.self, RemoteCommand.self, KeygenCommand.self, BenchCommand.self, BenchTargetCommand.self,
        ]
    )

    /// The release version: `scripts/release` names the package after it.
    static let version = "0.10.0"

    /// ArgumentParser's entry point, with the `--config` file's options put in front of the command line's first.
    /// A config file that cannot be used, or a bad value that came from it, is one line naming the file, the
    /// line and the key, and exit status 78 (EX_CONFIG).
    static func main() {
        do {
            var command = try parse(withConfig: Array(CommandLine.arguments.dropFirst()))
            try command.run()
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("tcptunnel: error: \(error)\n".utf8))
            Foundation.exit(78)
        } catch {
            exit(withError: error)
        }
    }

    /// Parses `arguments` (the subcommand's name first) with the options of their `--config` file in front. A
    /// usage error in a value that came from the file is rethrown as a `ConfigError` naming the file, the line
    /// and the key.
    static func parse(withConfig arguments: [String]) throws -> any ParsableCommand {
        let expanded = try ConfigFile.expand(
            arguments, options: configKeys(for: arguments.first), shortNames: OptionCatalog.shortNames)
        do {
            return try parseAsRoot(expanded.arguments)
        } catch {
            if let located = expanded.file?.locate(message(for: error), shortNames: OptionCatalog.shortNames) {
                throw ConfigError(located)
            }
            throw error
        }
    }

    /// The config-file keys of the subcommand named `name`.
    static func configKeys(for name: String?) -> [String: ConfigFile.Kind] {
        switch name {
        case "local": OptionCatalog.options(of: [LocalCommand(), CommonOptions()])
        case "remote": OptionCatalog.options(of: [RemoteCommand(), CommonOptions()])
        default: [:]
        }
    }
}
