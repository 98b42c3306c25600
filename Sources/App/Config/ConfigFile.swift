import ArgumentParser
import Glibc
import Mux

/// A TOML file of an agent's options (`--config FILE`): every long option is a key of the same name, a
/// repeatable option takes an array of strings (or one string), a flag a boolean. Relative file paths in it
/// are relative to the file's folder. The file's options are put before the command
/// line's, and an option the command line gives replaces the file's entirely.
struct ConfigFile {
    /// How an option takes its value.
    enum Kind: Equatable {
        /// One value: a string or a number in the file.
        case single
        /// Any number of values: an array in the file.
        case repeatable
        /// No value: a boolean in the file.
        case flag
    }

    /// The file as given.
    let path: String
    /// The keys the file sets and the command line does not (so they took effect), with their lines.
    private let effectiveEntries: [TOMLReader.Entry]

    /// Where an error in a value that came from this file points: its file, line and key.
    func locate(_ message: String, shortNames: [String: String]) -> String? {
        for entry in effectiveEntries.sorted(by: { $0.key.count > $1.key.count }) {
            let names = ["--\(entry.key)"] + (shortNames[entry.key].map { [$0] } ?? [])
            guard names.contains(where: { message.contains($0) }) else { continue }
            return "\(path):\(entry.line): key '\(entry.key)': \(message)"
        }
        return nil
    }

    /// `arguments` (the subcommand's name, then its arguments) with the options of the `--config` file they
    /// name put right after the subcommand's name, or unchanged without `--config`. `options` are the command's long options and how each takes
    /// its value; `shortNames` maps a long name to its short form (`forward` → `-L`).
    static func expand(_ arguments: [String], options: [String: Kind], shortNames: [String: String])
        throws(ConfigError) -> (arguments: [String], file: ConfigFile?)
    {
        guard !options.isEmpty, let path = configPath(in: arguments) else { return (arguments, nil) }
        // Read with the agents' own reader: Foundation's file readers are left out of the binary (issue 17).
        let bytes: [UInt8]
        switch SystemFile.contents(of: path, limit: Self.maximumSize + 1) {
        case .success(let read) where read.count > Self.maximumSize:
            throw ConfigError("cannot read config file \(path): larger than 1 MiB")
        case .success(let read): bytes = read
        case .failure(let error): throw ConfigError("cannot read config file \(path): \(error)")
        }
        let text = try Self.text(of: bytes, path: path)
        let entries: [TOMLReader.Entry]
        do {
            entries = try TOMLReader.entries(in: text)
        } catch {
            throw ConfigError("\(path):\(error.line):\(error.column): \(error.message)")
        }
        let given = keysGiven(in: arguments, options: options, shortNames: shortNames)
        var expanded: [String] = []
        var effective: [TOMLReader.Entry] = []
        for entry in entries {
            let key = entry.key
            let location = "\(path):\(entry.line): key '\(key)'"
            guard !OptionCatalog.commandLineOnly.contains(key) else {
                throw ConfigError("\(location): --\(key) is given on the command line only")
            }
            guard let kind = options[key] else {
                throw ConfigError(
                    "\(location): unknown key (the keys are the long options of `tcptunnel \(arguments.first ?? "")`; see --help)"
                )
            }
            var values = try values(of: entry.value, kind: kind, key: key, at: location)
            if OptionCatalog.pathOptions.contains(key) { values = values.map { resolve($0, besides: path) } }
            guard !given.contains(key) else { continue }
            effective.append(entry)
            switch kind {
            case .flag: if values == ["true"] { expanded.append("--\(key)") }
            // `--key=value`, one argument: a value that starts with a dash (`-5`) is then read as the value,
            // and its range checked, not taken for an option.
            case .single, .repeatable: for value in values { expanded.append("--\(key)=\(value)") }
            }
        }
        let command = Array(arguments.prefix(1))
        return (command + expanded + arguments.dropFirst(), ConfigFile(path: path, effectiveEntries: effective))
    }

    /// The file's bytes as text; a file that is not UTF-8 (TOML's encoding) is an error naming the first line
    /// that is not.
    /// The largest config file read: far more than any configuration needs.
    static let maximumSize = 1 << 20

    private static func text(of bytes: [UInt8], path: String) throws(ConfigError) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        // A character never spans a line break, so the file's first line that does not decode is the culprit.
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let line = 1 + (lines.firstIndex { String(validating: $0, as: UTF8.self) == nil } ?? 0)
        throw ConfigError(
            "\(path):\(line): not UTF-8 text, as TOML files are (convert the file with iconv -t UTF-8, or retype "
                + "that line)")
    }

    /// A file path from the config file at `configPath`: a relative one is relative to that file's folder, as
    /// in nginx's and sshd's own files, so a config can name the key beside it whatever the working directory.
    static func resolve(_ value: String, besides configPath: String) -> String {
        guard !value.hasPrefix("/"), !value.isEmpty else { return value }
        guard let slash = configPath.lastIndex(of: "/") else { return value }
        return String(configPath[...slash]) + value
    }

    /// The option's values as command-line text, or an error naming what `key` should hold.
    private static func values(of value: TOMLValue, kind: Kind, key: String, at location: String)
        throws(ConfigError) -> [String]
    {
        switch kind {
        case .flag:
            guard case .boolean(let bool) = value else {
                throw ConfigError("\(location): expected true or false, found \(value.kindName)")
            }
            return [bool ? "true" : "false"]
        case .single:
            guard let text = scalarText(value) else {
                throw ConfigError("\(location): expected a string or a number, found \(value.kindName)")
            }
            return [text]
        case .repeatable:
            // One value may be written without brackets, so that a key that took one value before it became
            // repeatable (`remote = "host:port"`) keeps working.
            if let text = scalarText(value) { return [text] }
            guard case .array(let array) = value else {
                throw ConfigError(
                    "\(location): expected an array of strings, like \(key) = [\"…\"]")
            }
            var texts: [String] = []
            for element in array {
                guard let text = scalarText(element) else {
                    throw ConfigError("\(location): expected an array of strings, found \(element.kindName) in it")
                }
                texts.append(text)
            }
            return texts
        }
    }

    private static func scalarText(_ value: TOMLValue) -> String? {
        switch value {
        case .string(let string): string
        case .integer(let integer): String(integer)
        case .float(let float): String(float)
        case .boolean, .array: nil
        }
    }

    /// The path after `--config` or in `--config=PATH`.
    static func configPath(in arguments: [String]) -> String? {
        for (index, argument) in arguments.enumerated() {
            if argument == "--config", index + 1 < arguments.count { return arguments[index + 1] }
            if argument.hasPrefix("--config=") { return String(argument.dropFirst("--config=".count)) }
        }
        return nil
    }

    /// The long names of the options the command line gives, and `positional` when it gives positional
    /// arguments (the seed forms `local HOST PORT` and `remote HOST PORT`, which stand for `remote` and `listen`).
    private static func keysGiven(in arguments: [String], options: [String: Kind], shortNames: [String: String])
        -> Set<String>
    {
        let longOfShort = Dictionary(uniqueKeysWithValues: shortNames.map { ($1, $0) })
        var given: Set<String> = []
        var index = 1  // after the subcommand's name
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument.hasPrefix("--") {
                let name = String(argument.dropFirst(2).prefix { $0 != "=" })
                given.insert(name)
                if !argument.contains("="), options[name] != .flag { index += 1 }
            } else if let long = longOfShort[String(argument.prefix(2))] {
                given.insert(long)
                if argument.count == 2 { index += 1 }
            } else if !argument.hasPrefix("-") {
                given.insert(arguments.first == "local" ? "remote" : "listen")
            }
        }
        return given
    }
}

/// A config file that cannot be used: one line naming the file, the line and the key where it can.
struct ConfigError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// One `key = value` line of TOML, as `--check` prints the effective settings.
enum TOMLLine {
    static func string(_ key: String, _ value: String) -> String { "\(key) = \(quoted(value))" }

    static func array(_ key: String, _ values: [String]) -> String {
        "\(key) = [\(values.map(quoted).joined(separator: ", "))]"
    }

    static func number(_ key: String, _ value: Double) -> String {
        "\(key) = \(value == value.rounded() ? String(Int(value)) : String(value))"
    }

    private static func quoted(_ text: String) -> String {
        "\"" + text.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
    }
}
