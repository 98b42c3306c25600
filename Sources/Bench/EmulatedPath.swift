import FoundationEssentials
import Glibc
import Mux

/// A wide-area path with real kernel TCP at both ends: two network namespaces the benchmark makes, a TUN
/// device in each, and two `PathLane`s in this process between the devices, one each way. A program in the
/// client namespace reaches the server namespace at `serverAddress`, and every packet between them is
/// delayed, rate-limited through a drop-tail queue and lost as `shape` says. Needs root (CAP_NET_ADMIN and
/// CAP_SYS_ADMIN).
public final class EmulatedPath: Sendable {
    /// What the path does to each packet, each way.
    public let shape: EmulatedPathShape
    /// Where the route's clients, the local agent and the peers' client halves run.
    let client: NetworkNamespace
    /// Where the remote agent, the peers' server halves and the echo target run.
    let server: NetworkNamespace
    /// The client namespace's address on the path.
    static let clientAddress = "10.201.0.1"
    /// The server namespace's address on the path.
    static let serverAddress = "10.201.0.2"
    private let devices: [TunDevice]
    private let lanes: [PathLane]
    private let scratch: URL
    private let nextPort = Locked<UInt16>(20_000)

    /// Why the path cannot be made on this machine, in one line; nil if it can.
    public static var unavailability: String? {
        if geteuid() != 0 { return "the emulated path needs root (network namespaces and TUN devices)" }
        if access("/dev/net/tun", R_OK | W_OK) != 0 { return "the emulated path needs /dev/net/tun" }
        if (try? ChildProcess.locate("ip")) == nil { return "the emulated path needs ip (Debian: iproute2)" }
        return nil
    }

    private static let instances = Locked(0)
    /// Paths made and not yet stopped, for `stopAll()`; leaving it is what makes `stop()` happen once.
    private static let live = Locked<[ObjectIdentifier: EmulatedPath]>([:])

    /// Makes both namespaces and devices and starts the lanes; `scratch` holds the setup commands' logs.
    public init(shape: EmulatedPathShape, scratch: URL) throws(BenchError) {
        if let reason = Self.unavailability { throw BenchError(reason) }
        self.shape = shape
        self.scratch = scratch
        let instance = Self.instances.withLock { count in
            count += 1
            return count
        }
        let prefix = "tcptunnel-\(getpid())-\(instance)"
        let client = try NetworkNamespace.create(named: "\(prefix)-client", scratch: scratch)
        let server: NetworkNamespace
        do {
            server = try NetworkNamespace.create(named: "\(prefix)-server", scratch: scratch)
        } catch {
            client.delete(scratch: scratch)
            throw error
        }
        var devices: [TunDevice] = []
        do {
            for (namespace, address) in [(client, Self.clientAddress), (server, Self.serverAddress)] {
                devices.append(try namespace.run { () throws(BenchError) in try TunDevice(named: "path0") })
                // No IPv6 link-local address, so the kernel sends nothing of its own along the path.
                try namespace.configure(["link", "set", "path0", "addrgenmode", "none"], scratch: scratch)
                try namespace.configure(["address", "add", "\(address)/24", "dev", "path0"], scratch: scratch)
                try namespace.configure(["link", "set", "path0", "up"], scratch: scratch)
            }
        } catch {
            for device in devices { device.close() }
            client.delete(scratch: scratch)
            server.delete(scratch: scratch)
            throw error
        }
        self.client = client
        self.server = server
        self.devices = devices
        lanes = [
            PathLane(from: devices[0], to: devices[1], shape: shape, seed: 1),
            PathLane(from: devices[1], to: devices[0], shape: shape, seed: 2),
        ]
        Self.live.withLock { $0[ObjectIdentifier(self)] = self }
        do {
            for lane in lanes { try lane.start() }
        } catch {
            stop()
            throw error
        }
    }

    /// Stops the lanes, removes the devices and both namespaces; best after the processes in the namespaces
    /// stopped. Idempotent.
    public func stop() {
        guard Self.live.withLock({ $0.removeValue(forKey: ObjectIdentifier(self)) }) != nil else { return }
        for lane in lanes { lane.stop() }
        for device in devices { device.close() }
        client.delete(scratch: scratch)
        server.delete(scratch: scratch)
    }

    /// Stops every path not yet stopped: for an interrupted run, so that no namespace outlives it.
    static func stopAll() {
        for path in live.withLock({ Array($0.values) }) { path.stop() }
    }

    /// Drops every packet both ways for `seconds` from now, as a path that fails silently does (a cut cable, a
    /// censor's null route), then carries them again.
    func blackhole(seconds: Double) {
        let until = ContinuousClock.now + .seconds(seconds)
        for lane in lanes { lane.blackhole(until: until) }
    }

    /// What each lane did: client to server, then server to client.
    var totals: (toServer: PathLane.Counts, toClient: PathLane.Counts) {
        (lanes[0].totals, lanes[1].totals)
    }

    /// A port no server in the server namespace uses yet (it is new and holds only what this run starts).
    func serverPort() -> UInt16 {
        nextPort.withLock { port in
            port += 1
            return port
        }
    }
}
