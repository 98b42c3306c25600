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
        let ports = try (0..<DNSServer.clients).map { _ in try freeLoopbackUDPPort() }
        let correct = Locked(0)
        let allDone = try runConcurrently(DNSServer.clients, within: 120) { client in
            let questions = (0..<DNSServer.questions).map { DNSServer.name(client: client, question: $0) }
            guard let answers = try? DNSServer.ask(questions.map(\.name), at: entry, fromPort: ports[client]) else {
                return
            }
            let right = zip(questions, answers).filter { $0.0.address == $0.1 }.count
            correct.withLock { $0 += answers.count == questions.count ? right : 0 }
        }
        #expect(allDone)
        #expect(correct.withLock { $0 } == DNSServer.clients * DNSServer.questions)
        #expect(tunnel.local.flowCount == DNSServer.clients, "one flow per client port")
        let datagrams = tunnel.local.metrics.datagrams
        #expect(DatagramDrop.allCases.allSatisfy { datagrams.drops($0) == 0 })
    }
}
