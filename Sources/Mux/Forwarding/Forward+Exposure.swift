extension Forward {
    /// What anyone who can reach this forward's port may do through the tunnel, when it listens beyond loopback
    /// and asks nobody for a password (a SOCKS5 server without `--socks-user-file`, or any `--listen` or `-L`);
    /// `nil` when only this host can reach it, or a login is required, or it listens on the remote side (`-R`,
    /// which the remote agent's `--allow-listen` rules govern). Said as a warning at start and in `--check`.
    public func exposure(socksLoginRequired: Bool) -> String? {
        switch self {
        case .tunnel(let listen) where !listen.isLoopback:
            "\(listen) listens beyond loopback: anyone who can reach it reaches the remote agent's target through the tunnel"
        case .local(let listen, let target) where !listen.isLoopback:
            "\(listen) listens beyond loopback: anyone who can reach it reaches \(target) through the tunnel (-L)"
        case .localUDP(let listen, let target) where !listen.isLoopback:
            "\(listen) listens beyond loopback: anyone who can send to it reaches \(target) through the tunnel (-L, UDP)"
        case .socks(let listen) where !listen.isLoopback && !socksLoginRequired:
            "the SOCKS5 server on \(listen) has no login and listens beyond loopback: anyone who can reach it can use "
                + "the tunnel as an open proxy to every target the remote agent allows (give --socks-user-file, or "
                + "bind 127.0.0.1)"
        default: nil
        }
    }
}

extension Endpoint {
    /// Whether only this host can connect to this address: 127.0.0.0/8, ::1 (or ::ffff:127.x), or `localhost`.
    var isLoopback: Bool {
        if host.lowercased() == "localhost" { return true }
        guard let bytes = IPNetwork.bytes(of: host) else { return false }
        return bytes.count == 4 ? bytes[0] == 127 : bytes == Array(repeating: 0, count: 15) + [1]
    }
}
