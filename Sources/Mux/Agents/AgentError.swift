/// Why an agent could not start. Each case names what to fix.
public enum AgentError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The listen address could not be bound (in use, not local, or not permitted).
    case cannotListen(Endpoint, SocketError)
    /// An address did not resolve.
    case badAddress(EndpointError)
    /// A setting is out of range.
    case invalidSettings(SettingsError)
    /// A thread could not be started.
    case resources(ThreadError)
    /// A system call the agent needs at start failed (out of descriptors or memory).
    case systemCall(SocketError)

    public var description: String {
        switch self {
        case .cannotListen(let endpoint, let error): "cannot listen on \(endpoint): \(error)"
        case .badAddress(let error): "\(error)"
        case .invalidSettings(let error): "invalid setting: \(error)"
        case .resources(let error): "\(error)"
        case .systemCall(let error): "\(error)"
        }
    }
}

extension Socket {
    /// Binds and listens on `endpoint`, mapping every failure to an `AgentError` for the operator.
    static func listen(on endpoint: Endpoint) throws(AgentError) -> Socket {
        let addresses: [ResolvedAddress]
        do {
            addresses = try endpoint.resolve(passive: true)
        } catch {
            throw .badAddress(error)
        }
        do {
            return try Socket.listen(on: addresses)
        } catch {
            throw .cannotListen(endpoint, error)
        }
    }
}
