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
    /// The TLS transport's cover site cannot be used: unreachable, or its answer cannot be mimicked.
    case coverUnusable(Endpoint, reason: String)

    public var description: String {
        switch self {
        case .cannotListen(let endpoint, let error): "cannot listen on \(endpoint): \(error)"
        case .badAddress(let error): "\(error)"
        case .invalidSettings(let error): "invalid setting: \(error)"
        case .resources(let error): "\(error)"
        case .systemCall(let error): "\(error)"
        case .coverUnusable(let cover, let reason):
            "cannot use \(cover) as the cover: \(reason) (--cover names a real HTTPS site that speaks TLS 1.3)"
        }
    }
}

extension AgentError {
    /// A listening socket the agent needs could not be made.
    package init(_ error: ListenError) {
        switch error {
        case .badAddress(let cause): self = .badAddress(cause)
        case .cannotListen(let endpoint, let cause): self = .cannotListen(endpoint, cause)
        }
    }
}
