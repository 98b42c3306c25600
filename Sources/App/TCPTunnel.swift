import ArgumentParser
import Crypto
import Glibc

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
    static let version = "0.13.0"

    /// ArgumentParser's entry point, with the `--config` file's options put in front of the command line's first.
    /// A config file that cannot be used, or a bad value that came from it, is one line naming the file, the
    /// line and the key, and exit status 78 (EX_CONFIG).
    static func main() {
        do {
            var command = try parse(withConfig: Array(CommandLine.arguments.dropFirst()))
            try command.run()
        } catch let error as ConfigError {
            StandardStreams.error("tcptunnel: error: \(error)\n")
            Glibc.exit(78)
        } catch let error as UnknownOptionError {
            // ArgumentParser's own three lines for a usage error, with the subcommand's usage.
            let name = error.command.configuration.commandName ?? ""
            StandardStreams.error(
                "Error: \(error.message)\nUsage: \(usageString(for: error.command))\n  See 'tcptunnel \(name) --help' for more information.\n"
            )
            Glibc.exit(ExitCode.validationFailure.rawValue)
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
            if let subcommand = subcommand(named: arguments.first),
                let unknown = OptionCatalog.unknownOptionMessage(
                    in: Array(arguments.dropFirst()), known: Set(OptionCatalog.options(of: subcommand.parts).keys))
            {
                throw UnknownOptionError(message: unknown, command: subcommand.type)
            }
            if let located = expanded.file?.locate(message(for: error), shortNames: OptionCatalog.shortNames) {
                throw ConfigError(located)
            }
            throw error
        }
    }

    /// The subcommand named `name`, and fresh instances of its parts (the command and its option groups).
    static func subcommand(named name: String?) -> (type: any ParsableCommand.Type, parts: [any ParsableArguments])? {
        switch name {
        case "local": (LocalCommand.self, [LocalCommand(), CommonOptions()])
        case "remote": (RemoteCommand.self, [RemoteCommand(), CommonOptions()])
        case "keygen": (KeygenCommand.self, [KeygenCommand()])
        case "bench": (BenchCommand.self, [BenchCommand()])
        case "bench-target": (BenchTargetCommand.self, [BenchTargetCommand()])
        default: nil
        }
    }

    /// The config-file keys of the subcommand named `name`.
    static func configKeys(for name: String?) -> [String: ConfigFile.Kind] {
        name == "local" || name == "remote"
            ? subcommand(named: name).map { OptionCatalog.options(of: $0.parts) } ?? [:] : [:]
    }
}

/// An option the subcommand does not have, reported before anything its validation would say.
struct UnknownOptionError: Error, CustomStringConvertible {
    /// ArgumentParser's message, with its suggestion.
    let message: String
    let command: any ParsableCommand.Type

    var description: String { message }
}
