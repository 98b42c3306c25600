import CLinux
import Glibc

/// A TUN device: the kernel hands each IP packet it routes to the device to this descriptor, and takes each
/// packet written here as one that arrived on it. The device lives in the network namespace of the thread
/// that made it, and goes away when the descriptor is closed.
///
/// Ownership: one `PathLane` reads it and the other writes it; `close()` is called once both lanes stopped.
final class TunDevice: Sendable {
    /// The interface name inside its namespace.
    let name: String
    private let descriptor: Int32

    /// Makes the device `name` in the calling thread's network namespace (needs CAP_NET_ADMIN).
    init(named name: String) throws(BenchError) {
        let descriptor = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { throw BenchError("cannot open /dev/net/tun: \(Self.lastError)") }
        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { field in
            for (index, byte) in name.utf8.prefix(Int(IFNAMSIZ) - 1).enumerated() { field[index] = byte }
        }
        request.ifr_ifru.ifru_flags = Int16(IFF_TUN | IFF_NO_PI)  // bare IP packets, no header before them
        guard ioctl(descriptor, clinux_TUNSETIFF, &request) == 0 else {
            let error = Self.lastError
            Glibc.close(descriptor)
            throw BenchError("cannot make TUN device \(name): \(error)")
        }
        self.name = name
        self.descriptor = descriptor
    }

    /// Waits up to `timeoutMillis` for a packet and reads it into `buffer`; returns its size, 0 if none came,
    /// or nil if the device failed.
    func read(into buffer: UnsafeMutableRawBufferPointer, timeoutMillis: Int32) -> Int? {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&entry, 1, timeoutMillis)
        if ready == 0 || (ready < 0 && errno == EINTR) { return 0 }
        guard ready > 0 else { return nil }
        let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
        if count < 0 && (errno == EINTR || errno == EAGAIN) { return 0 }
        return count > 0 ? count : nil
    }

    /// Hands `packet` to the kernel as if it arrived on the device. A packet the kernel refuses is lost, as
    /// on a real link.
    func write(_ packet: [UInt8]) {
        _ = packet.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
    }

    /// Closes the descriptor, which removes the device.
    func close() {
        Glibc.close(descriptor)
    }

    private static var lastError: String { String(cString: strerror(errno)) }
}
