/// Why a listening socket could not be made on an endpoint. Each case names what to fix.
package enum ListenError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The endpoint's host is not a usable address or name.
    case badAddress(EndpointError)
    /// bind(2) or listen(2) failed on every address of the endpoint (in use, not ours, no permission).
    case cannotListen(Endpoint, SocketError)

    package var description: String {
        switch self {
        case .cannotListen(let endpoint, let error): "cannot listen on \(endpoint): \(error)"
        case .badAddress(let error): "\(error)"
        }
    }
}

extension Socket {
    /// Binds and listens on `endpoint`: every address it resolves to for listening, the first that works.
    static func listen(on endpoint: Endpoint) throws(ListenError) -> Socket {
        try endpoint.bind { (addresses) throws(SocketError) in try Socket.listen(on: addresses) }
    }
}

extension Endpoint {
    /// Resolves this endpoint for listening and binds one of its addresses with `bind`, each failure reported as
    /// the `ListenError` it is.
    func bind<Bound>(with bind: ([ResolvedAddress]) throws(SocketError) -> Bound) throws(ListenError) -> Bound {
        let addresses: [ResolvedAddress]
        do {
            addresses = try resolve(passive: true)
        } catch {
            throw .badAddress(error)
        }
        do {
            return try bind(addresses)
        } catch {
            throw .cannotListen(self, error)
        }
    }
}
