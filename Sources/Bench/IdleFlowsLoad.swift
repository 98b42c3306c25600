import Mux

/// UDP flows held idle: `count` client sockets each send one datagram through the route and wait for its echo,
/// so that each has a flow on both agents; then, with every socket still open and quiet, each agent's resident
/// memory is read again.
enum IdleFlowsLoad {
    /// Sockets that send their first datagram before the load waits for their echoes: enough to go fast, few
    /// enough that a route's queues never drop one.
    static let batch = 256

    static func run(entry: Endpoint, count: Int, local: ProcessProbe, remote: ProcessProbe) -> IdleFlowsReport {
        var report = IdleFlowsReport(
            requested: count, usable: 0, localBefore: local.residentBytes, localAfter: 0,
            remoteBefore: remote.residentBytes, remoteAfter: 0)
        var sockets: [DatagramSocket] = []
        defer { for socket in sockets { socket.close() } }
        var response = [UInt8](repeating: 0, count: 65)
        while sockets.count < count {
            var fresh: [(DatagramSocket, [UInt8])] = []
            for index in sockets.count..<min(count, sockets.count + batch) {
                do {
                    let socket = try DatagramSocket.connect(to: entry.resolve()[0])
                    sockets.append(socket)
                    var datagram = [UInt8](repeating: 1, count: 64)
                    RequestLoad.stamp(UInt32(index), into: &datagram)
                    _ = try datagram.withUnsafeBytes { try socket.send($0) }
                    fresh.append((socket, datagram))
                } catch {
                    report.firstFailure = report.firstFailure ?? "flow \(index): \(error)"
                    return finish(report, local: local, remote: remote)
                }
            }
            for (socket, datagram) in fresh
            where DatagramRequestLoad.awaitEcho(of: datagram, into: &response, on: socket, until: .now + .seconds(2)) {
                report.usable += 1
            }
        }
        sleep(seconds: 0.5)  // let the agents settle
        return finish(report, local: local, remote: remote)
    }

    private static func finish(_ report: IdleFlowsReport, local: ProcessProbe, remote: ProcessProbe) -> IdleFlowsReport
    {
        var report = report
        report.localAfter = local.residentBytes
        report.remoteAfter = remote.residentBytes
        return report
    }
}
