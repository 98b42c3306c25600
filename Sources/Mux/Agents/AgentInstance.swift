/// A remote agent's instance: a random number it draws at start and sends first on every link (AGENT_ID,
/// docs/PROTOCOL.md §5), so that a local agent knows which of its links reach the same agent even when a load
/// balancer hides which is which. Logs show the first 8 hex digits, enough to tell a handful of agents apart.
enum AgentInstance {
    /// A new instance number; never 0.
    static func draw() -> UInt64 { UInt64.random(in: 1...UInt64.max) }

    /// The instance as logs show it.
    static func text(_ instance: UInt64) -> String {
        let hex = String(instance >> 32, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}
