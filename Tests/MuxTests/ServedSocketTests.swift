import Glibc
import Testing

@testable import Mux

@Suite(.timeLimit(.minutes(1)))
struct ServedSocketTests {
    /// The listener-stop race: the serving thread returns, and closes the socket, as soon as it sees the stop.
    /// If `stop` shut the socket down only after the thread could see the stop, the thread could close the
    /// descriptor first and the shutdown would reach a closed, possibly reused, number. So by the time the
    /// thread sees the stop, the socket must already be shut down (poll reports POLLHUP). Many rounds, because
    /// the window is a few instructions wide: with the shutdown after the lock, 3 to 19 rounds in 100 saw the
    /// stop first.
    @Test func stopShutsTheSocketDownBeforeItsThreadCanSeeTheStop() throws {
        let rounds = 100
        let shutDownWhenSeen = Locked(0)
        for _ in 0..<rounds {
            let served = ServedSocket(try Socket.listen(on: Endpoint(host: "127.0.0.1", port: 0)))
            let started = Completion()
            try served.start(named: "served-test") {
                started.complete()
                while !served.isStopping {}  // spin, to look the moment the stop becomes visible
                var entry = pollfd(fd: served.socket.fd, events: Int16(POLLIN), revents: 0)
                if poll(&entry, 1, 0) == 1 && entry.revents & Int16(POLLHUP) != 0 {
                    shutDownWhenSeen.withLock { $0 += 1 }
                }
            }
            #expect(started.wait(seconds: 5))
            served.stop()
        }
        #expect(shutDownWhenSeen.withLock { $0 } == rounds)
    }
}
