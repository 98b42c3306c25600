import Crypto
import Foundation
import Testing

@testable import Mux

/// A remote agent with allow and listen rules, and a local agent with forwards, linked on 127.0.0.1.
final class ForwardingTunnel {
    let remote: RemoteAgent
    let local: LocalAgent
    /// The key both agents hold, for another local agent to join.
    let key: PreSharedKey

    init(
        target: Endpoint, allow: [String] = [], allowListen: [String] = [], forwards: [Forward],
        socksCredentials: SocksCredentials? = nil, settings: TunnelSettings = testSettings(),
        remoteSettings: TunnelSettings? = nil, links: Int = 1,
        metrics: (local: AgentMetrics, remote: AgentMetrics) = (AgentMetrics(), AgentMetrics())
    ) throws {
        key = try makeKey()
        remote = try RemoteAgent(
            listen: loopback, allowList: AllowList(defaultTarget: target, rules: try allow.map(AllowRule.init)),
            listenRules: try allowListen.map(ListenRule.init), keys: [key], settings: remoteSettings ?? settings,
            metrics: metrics.remote, logger: quietLogger)
        try remote.start()
        local = try LocalAgent(
            forwards: forwards, remotes: [remote.listeningEndpoint], linksPerRemote: links, key: key,
            socksCredentials: socksCredentials, settings: settings, metrics: metrics.local, logger: quietLogger)
        try local.start()
    }

    /// The local agent's listening forwards' addresses, in the order given.
    var endpoints: [Endpoint] { local.listeningEndpoints }

    func stop() {
        local.stop()
        remote.stop()
    }
}

/// The TCP connections established to `port` on 127.0.0.1, counted at their accepting end in /proc/net/tcp: the
/// links a remote agent listening there carries, whatever the agents report about themselves.
func establishedConnections(toPort port: UInt16) -> Int {
    // Read to end of file: /proc files report a size of 0.
    guard let data = FileHandle(forReadingAtPath: "/proc/net/tcp")?.readDataToEndOfFile() else { return -1 }
    return String(decoding: data, as: UTF8.self).split(separator: "\n").dropFirst().filter { line in
        let fields = line.split(separator: " ")
        guard fields.count > 3, let local = fields[1].split(separator: ":").last else { return false }
        return UInt16(local, radix: 16) == port && fields[3] == "01"  // TCP_ESTABLISHED
    }.count
}

/// A port on 127.0.0.1 that nothing listens on now.
func freeLoopbackPort() throws -> UInt16 {
    let socket = try Socket.listen(on: try loopback.resolve(passive: true))
    defer { socket.close() }
    return socket.localEndpoint.port
}

/// A loopback port held by a bound socket that does not listen: connects to it are refused, and while it is held
/// no other test's listener, nor the kernel's choice of a free port, can take it. Without SO_REUSEADDR, so a
/// listener that tries to bind it fails with EADDRINUSE. Call `release` when done.
struct HeldLoopbackPort {
    let port: UInt16
    private let descriptor: Int32

    init() throws {
        let descriptor = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw SocketError(call: "socket", code: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                Glibc.bind(descriptor, raw, length) == 0 && getsockname(descriptor, raw, &length) == 0
            }
        }
        guard bound else {
            let code = errno
            Glibc.close(descriptor)
            throw SocketError(call: "bind", code: code)
        }
        port = UInt16(bigEndian: address.sin_port)
        self.descriptor = descriptor
    }

    func release() {
        Glibc.close(descriptor)
    }
}

/// Whether ::1 can be bound here (some containers run without IPv6).
let hasIPv6Loopback: Bool = {
    guard let addresses = try? Endpoint(host: "::1", port: 0).resolve(passive: true),
        let socket = try? Socket.listen(on: addresses)
    else { return false }
    socket.close()
    return true
}()

/// A listener whose accept queue is full, so the kernel drops further SYNs and connects to it time out.
final class BlackHole {
    let endpoint: Endpoint
    private let listener: Socket
    private let filler: Socket

    init() throws {
        listener = try Socket.listen(on: try loopback.resolve(passive: true), backlog: 0)
        endpoint = listener.localEndpoint
        filler = try connect(to: endpoint)
    }

    deinit {
        filler.close()
        listener.close()
    }
}

/// A SOCKS5 client for tests: speaks exactly the bytes it is told to, and reads the server's answers.
struct SocksClient {
    let socket: Socket

    /// Connects to `proxy` and negotiates "no authentication", or username/password with `login`.
    static func connect(
        to proxy: Endpoint, login: (user: String, password: String)? = nil
    ) throws -> (client: SocksClient, methodAccepted: Bool, loginAccepted: Bool?) {
        let socket = try EndToEndTests.connect(to: proxy)
        socket.setReceiveTimeout(seconds: 10)
        let client = SocksClient(socket: socket)
        try socket.sendAll([5, 1, login == nil ? 0 : 2])
        let method = client.read(2)
        guard method == [5, login == nil ? 0 : 2] else { return (client, false, nil) }
        guard let login else { return (client, true, nil) }
        try socket.sendAll(
            [1, UInt8(login.user.utf8.count)] + Array(login.user.utf8) + [UInt8(login.password.utf8.count)]
                + Array(login.password.utf8))
        return (client, true, client.read(2) == [1, 0])
    }

    /// Sends CONNECT to a name and returns the reply code, or nil if the server closed without one.
    func connect(name: String, port: UInt16) throws -> UInt8? {
        try request(command: 1, address: [3, UInt8(name.utf8.count)] + Array(name.utf8), port: port)
    }

    /// Sends CONNECT to an IPv4 or IPv6 address and returns the reply code.
    func connect(address: String, port: UInt16) throws -> UInt8? {
        switch WireHost(address) {
        case .ipv4(let bytes): try request(command: 1, address: [1] + bytes, port: port)
        case .ipv6(let bytes): try request(command: 1, address: [4] + bytes, port: port)
        default: nil
        }
    }

    /// Sends a request with any command and raw address (type byte included); returns the reply code.
    func request(command: UInt8, address: [UInt8], port: UInt16) throws -> UInt8? {
        try socket.sendAll([5, command, 0] + address + [UInt8(port >> 8), UInt8(port & 0xff)])
        let reply = read(10)
        return reply.count == 10 ? reply[1] : nil
    }

    /// Sends UDP ASSOCIATE and returns the relay's address from a success reply, or `nil` for any other reply.
    func associate() throws -> Endpoint? {
        try socket.sendAll([5, 3, 0, 1, 0, 0, 0, 0, 0, 0])
        let reply = read(4)
        guard reply.count == 4, reply[1] == 0 else { return nil }
        let address = read(reply[3] == 4 ? 16 : 4)
        let port = read(2)
        guard port.count == 2 else { return nil }
        let host = address.count == 16 ? WireHost.ipv6(address).text : WireHost.ipv4(address).text
        return Endpoint(host: host, port: UInt16(port[0]) << 8 | UInt16(port[1]))
    }

    /// Reads up to `count` bytes, fewer only if the server closed.
    func read(_ count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: count)
        while bytes.count < count {
            let wanted = count - bytes.count
            guard
                let n = try? buffer.withUnsafeMutableBytes({
                    try socket.receive(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<wanted]))
                }), n > 0
            else { break }
            bytes += buffer[..<n]
        }
        return bytes
    }

    /// Whether the server closed the connection (end of stream or reset) within `seconds`.
    func isClosed(within seconds: Double = 5) -> Bool {
        [.endOfStream, .reset].contains(receive(socket, within: seconds).ending)
    }
}
