import CLinux
import FoundationEssentials
import Glibc
import Mux

/// A network namespace the benchmark made for one run (`ip netns add`), with its own loopback, devices,
/// routes and TCP settings (each new namespace starts from the kernel's defaults, not the host's tuning).
///
/// A thread enters a namespace only through `run(_:)`, which starts a thread of its own for it: setns(2)
/// moves just the calling thread (and the threads and processes it starts afterwards), so a thread borrowed
/// from a pool would carry the namespace into unrelated work.
struct NetworkNamespace: Sendable {
    /// The name `ip netns` knows it by.
    let name: String

    /// Makes the namespace, with its loopback up.
    static func create(named name: String, scratch: URL) throws(BenchError) -> NetworkNamespace {
        try command(["netns", "add", name], scratch: scratch)
        let namespace = NetworkNamespace(name: name)
        do {
            try namespace.configure(["link", "set", "lo", "up"], scratch: scratch)
        } catch {
            namespace.delete(scratch: scratch)
            throw error
        }
        return namespace
    }

    /// Runs `ip -n <name> <arguments>`: configures a device, an address or a route inside the namespace.
    func configure(_ arguments: [String], scratch: URL) throws(BenchError) {
        try Self.command(["-n", name] + arguments, scratch: scratch)
    }

    /// Removes the namespace's name. Its devices go with it once no process and no descriptor holds it.
    func delete(scratch: URL) {
        try? Self.command(["netns", "delete", name], scratch: scratch)
    }

    /// Runs `body` on a new thread inside the namespace and returns what it returned: sockets it creates,
    /// and threads and processes it starts, belong to the namespace. Waits for `body` to return.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws(BenchError) -> T) throws(BenchError) -> T {
        let outcome = Locked<Result<T, BenchError>?>(nil)
        let done = Completion()
        do {
            try startThread(named: "netns-\(name)") {
                let result = Result { () throws(BenchError) -> T in
                    try enterOnThisThread()
                    return try body()
                }
                outcome.withLock { $0 = result }
                done.complete()
            }
        } catch {
            throw BenchError("cannot start a thread in network namespace \(name): \(error)")
        }
        done.wait()
        return try outcome.withLock { $0! }.get()
    }

    /// Moves the calling thread into the namespace. Only for a thread started for it.
    private func enterOnThisThread() throws(BenchError) {
        let path = "/var/run/netns/\(name)"
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw BenchError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard setns(descriptor, CLONE_NEWNET) == 0 else {
            throw BenchError("cannot enter network namespace \(name): \(String(cString: strerror(errno)))")
        }
    }

    /// Runs `ip` with `arguments` and waits for it; throws with its output if it fails.
    private static func command(_ arguments: [String], scratch: URL) throws(BenchError) {
        let process = try ChildProcess("ip", executable: "ip", arguments: arguments, scratch: scratch)
        guard process.waitUntilExit() else {
            throw BenchError("ip \(arguments.joined(separator: " ")) failed: \(process.logTail)")
        }
    }
}
