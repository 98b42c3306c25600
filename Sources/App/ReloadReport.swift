import Logging
import Mux

/// What a reload (SIGHUP) did: what the running agent applied, what it could not, and which options changed but
/// take effect only when the agent restarts.
struct ReloadReport {
    var applied = Reconfiguration()
    /// The changed options a running agent cannot apply, as `--name`.
    var needsRestart: [String] = []

    /// Whether everything asked could be done (what waits for a restart aside): the reload metric's success.
    var succeeded: Bool { applied.failures.isEmpty }

    /// Logs the report: the changes at info, each failure as an error, what waits for a restart as a warning.
    func log(to logger: Logger) {
        if applied.changes.isEmpty && applied.failures.isEmpty && needsRestart.isEmpty {
            return logger.info("reloaded: nothing changed")
        }
        if !applied.changes.isEmpty { logger.info("reloaded: \(applied.changes.joined(separator: "; "))") }
        for failure in applied.failures { logger.error("reload: \(failure)") }
        if !needsRestart.isEmpty {
            logger.warning(
                "reload: \(needsRestart.joined(separator: ", ")) changed, which takes effect when the agent restarts")
        }
    }

    /// Applies the log level of the configuration just read, if it differs from the one in force.
    mutating func apply(logLevel: Logger.Level) {
        guard logLevel != LogLevelSwitch.current else { return }
        LogLevelSwitch.set(logLevel)
        applied.changes.append("log level now \(logLevel)")
    }

    /// The options of `command` whose effective value differs between two `--check` reports (`old`, as the
    /// agent started, and `new`), less those a running agent applies (`reloadable`), as `--name`.
    static func restartOnly(from old: String, to new: String, command: String, reloadable: Set<String>) -> [String] {
        let options = Set(TCPTunnel.configKeys(for: command).keys)
        let (before, after) = (settings(in: old), settings(in: new))
        return options.filter { before[$0] != after[$0] && !reloadable.contains($0) }.sorted().map { "--\($0)" }
    }

    /// Each option of a `--check` report with its line: `name = value`, or `# name: …` for one that is off,
    /// or the key's source comment.
    private static func settings(in report: String) -> [String: Substring] {
        var settings: [String: Substring] = [:]
        for line in report.split(separator: "\n") {
            if line.hasPrefix("# key from") {
                settings["key-file"] = line
            } else if let equals = line.firstRange(of: " = "), !line.hasPrefix("#") {
                settings[String(line[..<equals.lowerBound])] = line
            } else if line.hasPrefix("# "), let colon = line.firstIndex(of: ":"),
                line.dropFirst(2)[..<colon].allSatisfy({ $0.isLetter || $0 == "-" })
            {
                settings[String(line.dropFirst(2)[..<colon])] = line
            }
        }
        return settings
    }
}
