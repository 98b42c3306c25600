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

    /// Parses a `HOST:PORT` this agent will connect to: as `init(parsingArgument:option:)`, and port 0, which
    /// means "any port" only to a listener, is refused.
    init(parsingDialled text: String, option: String) throws {
        try self.init(parsingArgument: text, option: option)
        guard port != 0 else { throw ValidationError("\(option): port 0 cannot be connected to in '\(text)'") }
    }

    /// Builds an endpoint from the seed program's separate HOST and PORT arguments; with `isDialled` (the local
    /// agent's REMOTE-HOST REMOTE-PORT), port 0 is refused.
    init(host: String, portArgument: String, isDialled: Bool = false) throws {
        guard !host.isEmpty else { throw ValidationError("the host is empty") }
        guard let port = UInt16(portArgument) else {
            throw ValidationError("bad port '\(portArgument)': the port must be a number from 0 to 65535")
        }
        guard port != 0 || !isDialled else { throw ValidationError("REMOTE-PORT: port 0 cannot be connected to") }
        self.init(host: host, port: port)
    }
}
