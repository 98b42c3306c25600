import ArgumentParser

/// The long options a command declares and how each takes its value, read from the declarations themselves
/// (with `Mirror`, as ArgumentParser does), so that config-file keys can never drift from the command line.
enum OptionCatalog {
    /// Options that only make sense on the command line, never in a config file.
    static let commandLineOnly: Set<String> = ["config", "check"]

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
}
