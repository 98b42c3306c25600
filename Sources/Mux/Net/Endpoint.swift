import Glibc

/// A `HOST:PORT` pair as the user wrote it: an IPv4 address, a bracketed IPv6 address, or a name.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// The host part, without brackets.
    public let host: String
    /// The TCP port; 0 asks the system for any free port when listening.
    public let port: UInt16

    /// Creates an endpoint from its parts.
    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` or `[IPV6]:PORT`. Throws a message naming what is wrong.
    public init(parsing text: String) throws(EndpointError) {
        let hostPart: Substring
        let portPart: Substring
        switch Self.splitHost(text) {
        case .success(let parts): (hostPart, portPart) = parts
        case .failure(.noColon): throw EndpointError(text: text, reason: "expected HOST:PORT")
        case .failure(.unbracketedIPv6):
            throw EndpointError(text: text, reason: "an IPv6 address is written [ADDRESS]:PORT")
        }
        guard !hostPart.isEmpty else { throw EndpointError(text: text, reason: "the host is empty") }
        // A host name or address never holds brackets, spaces or control characters; refusing them keeps every
        // accepted endpoint printable as HOST:PORT and parsable back (found by the endpoint fuzzer).
        guard
            !hostPart.contains(where: {
                $0 == "[" || $0 == "]" || $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7f } == true
            })
        else { throw EndpointError(text: text, reason: "the host has a character no host name or address has") }
        guard let port = UInt16(portPart) else {
            throw EndpointError(text: text, reason: "the port must be a number from 0 to 65535")
        }
        self.init(host: String(hostPart), port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Why `splitHost` could not split a text.
    package enum SplitFailure: Error {
        /// No colon separates the host from what follows.
        case noColon
        /// A host holding colons (IPv6) without brackets, or a bracket not followed by `]:`.
        case unbracketedIPv6
    }

    /// Splits `HOST:REST` or `[HOST]:REST` at the colon after the host, dropping the brackets. Shared by every
    /// argument written this way (endpoints, allow rules), so that they read IPv6 alike.
    package static func splitHost(_ text: String) -> Result<(host: Substring, rest: Substring), SplitFailure> {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return .failure(.unbracketedIPv6)
            }
            return .success((text[text.index(after: text.startIndex)..<close], text[text.index(close, offsetBy: 2)...]))
        }
        guard let colon = text.lastIndex(of: ":") else { return .failure(.noColon) }
        let host = text[..<colon]
        guard !host.contains(":") else { return .failure(.unbracketedIPv6) }
        return .success((host, text[text.index(after: colon)...]))
    }

    /// Resolves the host into TCP socket addresses, in the resolver's order. An IPv4 or IPv6 address is converted
    /// without the resolver: the remote agent resolves its target once per stream, on the stream's own thread,
    /// and getaddrinfo costs a netlink query (9 µs here) and a 3 KiB stack frame that would stay resident, one
    /// page per stream thread.
    package func resolve(passive: Bool = false) throws(EndpointError) -> [ResolvedAddress] {
        if let literal = ResolvedAddress(literal: host, port: port) { return [literal] }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = passive ? AI_PASSIVE : AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw EndpointError(
                text: description, reason: "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(first) }
        var addresses: [ResolvedAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { dest in
                dest.copyMemory(
                    from: UnsafeRawBufferPointer(start: entry.pointee.ai_addr, count: Int(entry.pointee.ai_addrlen)))
            }
            addresses.append(ResolvedAddress(storage: storage, length: entry.pointee.ai_addrlen))
            cursor = entry.pointee.ai_next
        }
        return addresses
    }
}

/// A `HOST:PORT` text that could not be used, and why.
public struct EndpointError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The text as given.
    public let text: String
    /// What is wrong with it.
    public let reason: String

    public var description: String { "bad address '\(text)': \(reason)" }
}

/// One concrete socket address produced by name resolution.
package struct ResolvedAddress: @unchecked Sendable {  // a plain C struct value, copied, never shared by reference
    var storage: sockaddr_storage
    var length: socklen_t

    var family: Int32 { Int32(storage.ss_family) }

    /// The address held in `storage`, of which the first `length` bytes count.
    init(storage: sockaddr_storage, length: socklen_t) {
        self.storage = storage
        self.length = length
    }

    /// The address alone: 4 bytes for IPv4, 16 for IPv6.
    var addressBytes: [UInt8] {
        withUnsafeBytes(of: storage) { raw in
            family == AF_INET6
                ? Array(raw[MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!...].prefix(16))
                : Array(raw[MemoryLayout<sockaddr_in>.offset(of: \.sin_addr)!...].prefix(4))
        }
    }

    /// The port, in host order.
    var port: UInt16 {
        withUnsafeBytes(of: storage) { raw in
            UInt16(
                bigEndian: family == AF_INET6
                    ? raw.load(as: sockaddr_in6.self).sin6_port
                    : raw.load(as: sockaddr_in.self).sin_port)
        }
    }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }
    }

    /// The socket address of an IPv4 or IPv6 address literal (no scope, no name), or nil if `host` is not one.
    init?(literal host: String, port: UInt16) {
        var address4 = sockaddr_in()
        var address6 = sockaddr_in6()
        if inet_pton(AF_INET, host, &address4.sin_addr) == 1 {
            (address4.sin_family, address4.sin_port) = (sa_family_t(AF_INET), port.bigEndian)
            self.init(socketAddress: address4)
        } else if inet_pton(AF_INET6, host, &address6.sin6_addr) == 1 {
            (address6.sin6_family, address6.sin6_port) = (sa_family_t(AF_INET6), port.bigEndian)
            self.init(socketAddress: address6)
        } else {
            return nil
        }
    }

    private init<Address>(socketAddress: Address) {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: socketAddress, as: Address.self) }
        self.init(storage: storage, length: socklen_t(MemoryLayout<Address>.size))
    }

    /// The numeric form, e.g. `127.0.0.1:4000`; getnameinfo only for an IPv6 address with a scope, because its
    /// frame of more than a kilobyte would keep one more stack page resident on every stream thread that names
    /// its peer.
    var endpoint: Endpoint {
        let (scope, port) = withUnsafeBytes(of: storage) { raw in
            family == AF_INET6
                ? (raw.load(as: sockaddr_in6.self).sin6_scope_id, raw.load(as: sockaddr_in6.self).sin6_port)
                : (0, raw.load(as: sockaddr_in.self).sin_port)
        }
        guard family == AF_INET || family == AF_INET6, scope == 0 else { return resolverEndpoint }
        return addressBytes.withUnsafeBytes { Endpoint(host: addressText(family, $0), port: UInt16(bigEndian: port)) }
    }

    private var resolverEndpoint: Endpoint {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        _ = withSockaddr { address, length in
            getnameinfo(
                address, length, &host, socklen_t(host.count), &service, socklen_t(service.count),
                NI_NUMERICHOST | NI_NUMERICSERV)
        }
        let hostText = host.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let serviceText = service.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return Endpoint(host: hostText, port: UInt16(serviceText) ?? 0)
    }
}
