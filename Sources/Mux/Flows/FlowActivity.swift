import Synchronization

/// When a flow last carried a datagram each way: touched by whichever thread moves one, read by the thread that
/// ends idle flows and by the limiter choosing a flow to end at a cap.
final class FlowActivity: Sendable {
    /// `MonotonicClock` nanoseconds of the last datagram towards the target (or of the flow's start).
    private let lastToTarget = Atomic<UInt64>(MonotonicClock.nanoseconds())
    /// `MonotonicClock` nanoseconds of the last datagram towards the client; 0 before the first.
    private let lastToClient = Atomic<UInt64>(0)

    /// Records a datagram towards the target now.
    func touchToTarget() {
        lastToTarget.store(MonotonicClock.nanoseconds(), ordering: .relaxed)
    }

    /// Records a datagram towards the client now.
    func touchToClient() {
        lastToClient.store(MonotonicClock.nanoseconds(), ordering: .relaxed)
    }

    /// Seconds since the last datagram either way.
    var idleSeconds: Double {
        let now = MonotonicClock.nanoseconds()
        let last = max(lastToTarget.load(ordering: .relaxed), lastToClient.load(ordering: .relaxed))
        return now > last ? Double(now - last) / 1e9 : 0
    }

    /// Whether the last datagram went to the client: a flow of questions and answers (DNS) then waits for
    /// nothing from the target.
    var isAnswered: Bool {
        lastToClient.load(ordering: .relaxed) >= lastToTarget.load(ordering: .relaxed)
    }
}

/// A flow an agent keeps, as its `FlowLimiter` sees it: how long it has been idle, and how to end it to make room.
protocol LimitedFlow: AnyObject, Sendable {
    var activity: FlowActivity { get }
    /// Ends the flow now, without blocking (the limiter has already released its slot), and tells the peer.
    func evict()
}
