import Mux

/// What joins a route's two ends when they are not both on this machine's loopback.
enum LongPath: Sendable {
    /// A TCP relay in this process shaped like a long path (`--rtt`). Needs no root, but it ends TCP at the
    /// relay: the sender's socket empties at loopback speed, so queues in the sender's kernel never build.
    case relay(PathShape)
    /// An emulated path between two network namespaces (`--path`): kernel TCP from end to end.
    case emulated(EmulatedPath)
}

/// Where a route's server half (and the echo target) runs: the address it listens on, and the network
/// namespace it runs in (nil: this thread's).
struct ServerPlacement: Sendable {
    let listen: Endpoint
    let namespace: String?
    /// Another free port beside `listen`, for a program the server needs next to it (tcptunnel-tls's cover).
    let companionPort: UInt16

    /// In the server namespace, across an emulated path; on a free loopback port here otherwise.
    static func across(_ path: LongPath?) throws(BenchError) -> ServerPlacement {
        guard case .emulated(let emulated) = path else {
            return ServerPlacement(
                listen: Endpoint(host: "127.0.0.1", port: try RunningRoute.freePort()), namespace: nil,
                companionPort: try RunningRoute.freePort())
        }
        return ServerPlacement(
            listen: Endpoint(host: EmulatedPath.serverAddress, port: emulated.serverPort()),
            namespace: emulated.server.name, companionPort: emulated.serverPort())
    }

    /// Where the companion listens.
    var companion: Endpoint { Endpoint(host: listen.host, port: companionPort) }
}
