/// A bounded number of slots for things that each cost a thread: streams (an agent's cap on them), or SOCKS
/// handshakes in progress. The pool decides; whoever asks only takes and returns slots.
protocol SlotPool: Sendable {
    /// Takes a slot; `false` when all are taken.
    func tryAcquire() -> Bool
    /// Returns a slot taken by `tryAcquire`.
    func release()
    /// Why a newcomer is refused when every slot is taken, for a log line.
    var refusal: String { get }
}
