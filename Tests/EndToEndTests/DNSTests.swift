import Foundation
import Testing

@testable import Mux

/// DNS through the tunnel, as the README shows it: `dig` against a `-L …/udp` forward to a real dnsmasq.
@Suite(.dnsServer) struct DNSTests {
    @Test func aThousandQuestionsFromFiftyConcurrentDigClientsAreEachAnsweredCorrectly() throws {
        let server = try DNSServer.current
        let tunnel = try ForwardingTunnel(
            target: loopback, allow: ["127.0.0.1:\(server.endpoint.port)/udp"],
            forwards: [.localUDP(listen: loopback, target: server.endpoint)])
        defer { tunnel.stop() }
        #expect(eventually { tunnel.local.isLinkUp })
        let entry = tunnel.endpoints[0]
        // Each client asks from a port of its own: dig binds its sockets with SO_REUSEPORT, with which two dig
        // processes given ports by the kernel at once can share one, and take each other's answers.
        let ports = try freeLoopbackUDPPortsOutsideTheEphemeralRange(DNSServer.clients)
        let correct = Locked(0)
        let failures = Locked([String]())
        let allDone = try runConcurrently(DNSServer.clients, within: 120) { client in
            let questions = (0..<DNSServer.questions).map { DNSServer.name(client: client, question: $0) }
            do {
                let answers = try DNSServer.ask(questions.map(\.name), at: entry, fromPort: ports[client])
                let right = zip(questions, answers).filter { $0.0.address == $0.1 }.count
                correct.withLock { $0 += answers.count == questions.count ? right : 0 }
                if right < questions.count { failures.withLock { $0.append("client \(client): \(answers)") } }
            } catch {
                failures.withLock { $0.append("client \(client): \(error)") }
            }
        }
        #expect(allDone)
        #expect(
            correct.withLock { $0 } == DNSServer.clients * DNSServer.questions, "\(failures.withLock { $0 })")
        #expect(tunnel.local.flowCount == DNSServer.clients, "one flow per client port")
        let datagrams = tunnel.local.metrics.datagrams
        #expect(DatagramDrop.allCases.allSatisfy { datagrams.drops($0) == 0 })
    }

    @Test func pySocksResolvesThroughTheSocksServersUDPAssociation() throws {
        let server = try DNSServer.current
        try DebianPackages.ensureInstalled("python3-socks", providing: "/usr/lib/python3/dist-packages/socks.py")
        let tunnel = try ForwardingTunnel(
            target: loopback, allow: ["127.0.0.1:\(server.endpoint.port)/udp"], forwards: [.socks(listen: loopback)])
        defer { tunnel.stop() }
        #expect(eventually { tunnel.local.isLinkUp })
        let questions = (0..<DNSServer.questions).map { DNSServer.name(client: 7, question: $0) }
        // PySocks (Debian's python3-socks) sends each question as a datagram through a UDP ASSOCIATE relay; the
        // answer's last four bytes are the A record's address.
        let script = """
            import socket, socks, struct, sys
            proxy, server = int(sys.argv[1]), (sys.argv[2], int(sys.argv[3]))
            s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
            s.set_proxy(socks.SOCKS5, "127.0.0.1", proxy)
            s.settimeout(5)
            for name in sys.argv[4:]:
                labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
                s.sendto(struct.pack(">6H", 7, 0x0100, 1, 0, 0, 0) + labels + b"\\0" + struct.pack(">HH", 1, 1), server)
                answer, _ = s.recvfrom(4096)
                print(".".join(str(b) for b in answer[-4:]))
            """
        let result = try run(
            "/usr/bin/python3",
            ["-c", script, "\(tunnel.endpoints[0].port)", server.endpoint.host, "\(server.endpoint.port)"]
                + questions.map(\.name))
        let answers = String(decoding: result.output, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(result.status == 0, "\(result.errors)")
        #expect(answers == questions.map(\.address))
    }
}
