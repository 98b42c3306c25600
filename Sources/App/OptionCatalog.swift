import ArgumentParser

/// The long options a command declares and how each takes its value, read from the declarations themselves
/// (with `Mirror`, as ArgumentParser does), so that config-file keys can never drift from the command line.
enum OptionCatalog {
    /// Options that only make sense on the command line, never in a config file.
    static let commandLineOnly: Set<String> = ["config", "check"]

    /// Options whose values are file paths: in a config file, relative to that file's folder.
    static let pathOptions: Set<String> = ["key-file", "socks-user-file"]

    /// The short forms users also write (ssh's letters).
    static let shortNames = ["forward": "-L", "socks": "-D", "reverse": "-R"]

    /// The long options of a command whose declarations are spread over `parts` (the command and its option
    /// groups, freshly made), command-line-only ones included.
    static func options(of parts: [any ParsableArguments]) -> [String: ConfigFile.Kind] {
        var options: [String: ConfigFile.Kind] = [:]
        for part in parts {
            for child in Mirror(reflecting: part).children {
                guard let label = child.label?.dropFirst() else { continue }  // `_name`: the property wrapper
                let wrapper = String(describing: type(of: child.value))
                let kind: ConfigFile.Kind
                if wrapper.hasPrefix("Flag<") {
                    kind = .flag
                } else if wrapper.hasPrefix("Option<Array<") {
                    kind = .repeatable
                } else if wrapper.hasPrefix("Option<") {
                    kind = .single
                } else {
                    continue  // positional arguments and option groups
                }
                options[kebabCase(label)] = kind
            }
        }
        return options
    }

    /// `linkWaitTimeout` → `link-wait-timeout`, as ArgumentParser names long options.
    private static func kebabCase(_ name: Substring) -> String {
        name.reduce(into: "") { result, character in
            if character.isUppercase {
                result += "-" + character.lowercased()
            } else {
                result.append(character)
            }
        }
    }

    /// ArgumentParser's message for the first long option in `arguments` that `known` (and `--help`, `--version`)
    /// lacks, with its suggestion, or `nil` if every one is known. ArgumentParser reports an unknown option only
    /// once the command has validated, so a value left behind by a mistyped option (`--listn HOST:PORT`, taken
    /// as a positional) would otherwise be reported instead, as a missing argument.
    static func unknownOptionMessage(in arguments: [String], known: Set<String>) -> String? {
        let names = known.union(["help", "version"])
        for argument in arguments.prefix(while: { $0 != "--" }) where argument.hasPrefix("--") && argument.count > 2 {
            let name = String(argument.dropFirst(2).prefix { $0 != "=" })
            guard !names.contains(name) else { continue }
            if name == "key" && names.contains("key-file") { return keyOnCommandLine }
            let suggestion = names.map { (name: $0, distance: editDistance($0, name)) }
                .filter { $0.distance < 4 }.min { ($0.distance, $0.name) < ($1.distance, $1.name) }
            return "Unknown option '--\(name)'" + (suggestion.map { ". Did you mean '--\($0.name)'?" } ?? "")
        }
        return nil
    }

    /// What `--key` gets: keys are never taken as an argument, which `ps` and the shell's history would show.
    static let keyOnCommandLine =
        "Unknown option '--key': a key is never taken on the command line, where ps and the shell's history would "
        + "show it; pass --key-file FILE, or set TCPTUNNEL_KEY"

    /// The Levenshtein distance between `a` and `b`, as ArgumentParser measures suggestions.
    private static func editDistance(_ a: String, _ b: String) -> Int {
        let (a, b) = (Array(a), Array(b))
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
