import ArgumentParser
import Mux

extension Endpoint {
    /// Parses a `HOST:PORT` command-line value; a bad one is a usage error naming the option.
    init(parsingArgument text: String, option: String) throws {
        do {
            try self.init(parsing: text)
        } catch {
            throw ValidationError("\(option): \(error)")
        }
    }

    /// Builds an endpoint from the seed program's separate HOST and PORT arguments.
    init(host: String, portArgument: String) throws {
        guard !host.isEmpty else { throw ValidationError("the host is empty") }
        guard let port = UInt16(portArgument) else {
            throw ValidationError("bad port '\(portArgument)': the port must be a number from 0 to 65535")
        }
        self.init(host: host, port: port)
    }
}
