import Glibc
import Logging
import Testing

@testable import Mux

@Suite(.timeLimit(.minutes(1)))
struct ReverseListenersTests {
    /// A loopback port nothing listens on now.
    private func freePort() throws -> UInt16 {
        let probe = try Socket.listen(on: Endpoint(host: "127.0.0.1", port: 0))
        defer { probe.close() }
        return probe.localEndpoint.port
    }

    /// Whether a connection to `port` on loopback succeeds.
    private func accepts(_ port: UInt16) -> Bool {
        guard let addresses = try? Endpoint(host: "127.0.0.1", port: port).resolve(),
            let socket = try? Socket.connect(to: addresses, timeout: 1)
        else { return false }
        socket.close()
        return true
    }

    /// UNLISTEN arrives on the link's reader thread, which must never block: releasing a reverse forward's
    /// port returns at once even while its accept thread is still busy, and the port closes once it is free.
    @Test func releasingAPortForTheLinksReaderDoesNotWaitForItsAcceptThread() throws {
        let harness = try LinkHarness(role: .remote)
        let port = try freePort()
        let listeners = ReverseListeners(rules: [try ListenRule(parsing: "127.0.0.1:\(port)")])
        let busy = Completion()
        let handed = Completion()
        let outcome = listeners.bind(
            Endpoint(host: "127.0.0.1", port: port), forward: 1, for: harness.link,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() },
            service: .stream { client in
                handed.complete()
                busy.wait(seconds: 10)  // an accept thread the scheduler has not run again yet
                client.close()
            })
        #expect(outcome.result == .bound)
        let client = try Socket.connect(to: Endpoint(host: "127.0.0.1", port: port).resolve(), timeout: 5)
        #expect(handed.wait(seconds: 5))

        let start = ContinuousClock.now
        #expect(listeners.release(for: harness.link, forward: 1) == [Endpoint(host: "127.0.0.1", port: port)])
        let waited = ContinuousClock.now - start
        #expect(waited < .milliseconds(500), "the reader waited \(waited) for the accept thread")

        busy.complete()
        #expect(eventually { !accepts(port) }, "the port still accepts connections")
        client.close()
    }

    /// A reload's rules: a LISTEN they refused, or a port they stopped, is handed back for binding once new rules
    /// allow it again (docs/PROTOCOL.md §6.1); a link that has ended gets no port.
    @Test func whatTheRulesRefusedOrStoppedComesBackWhenTheyAllowItAndAnEndedLinkGetsNothing() throws {
        let harness = try LinkHarness(role: .remote)
        let port = try freePort()
        let address = Endpoint(host: "127.0.0.1", port: port)
        let listeners = ReverseListeners(rules: [])
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let bind = {
            listeners.bind(address, forward: 7, for: harness.link, logger: logger, service: .stream { $0.close() })
        }
        #expect(bind().result == .notAllowed)

        let allowing = [try ListenRule(parsing: "127.0.0.1:\(port)")]
        let allowed = listeners.update(rules: allowing).allowed
        #expect(allowed.map(\.forward) == [7] && allowed.map(\.address) == [address])
        #expect(bind().result == .bound)

        let stopped = listeners.update(rules: []).stopped
        #expect(stopped.map(\.forward) == [7])
        #expect(eventually { !accepts(port) })
        #expect(listeners.update(rules: allowing).allowed.map(\.forward) == [7], "stopped, then allowed again")

        harness.link.close(.localShutdown)
        #expect(bind().result == .failed, "a link that has ended")
        #expect(accepts(port) == false)
    }
}
