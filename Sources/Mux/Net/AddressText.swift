import Glibc

/// The canonical text of an IPv4 (4 bytes, `family` AF_INET) or IPv6 (16 bytes, AF_INET6) address, e.g.
/// `127.0.0.1` or `::1`.
///
/// IPv4 is written here rather than by inet_ntop, which formats it with sprintf: vfprintf's frame of more than a
/// kilobyte would keep one more stack page resident on every stream thread that names its peer (4 KiB a stream,
/// 40 MiB at 10,000 streams).
package func addressText(_ family: Int32, _ bytes: UnsafeRawBufferPointer) -> String {
    if family == AF_INET {
        return "\(bytes[0]).\(bytes[1]).\(bytes[2]).\(bytes[3])"
    }
    return withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN)) { text in
        _ = inet_ntop(family, bytes.baseAddress, text.baseAddress, socklen_t(text.count))
        return String(cString: text.baseAddress!)
    }
}
