/// What a local agent asks of a new connection in its first frame (SESSION, docs/PROTOCOL.md §10).
package enum SessionRequest: Equatable, Sendable {
    /// Begin a new session on this connection.
    case begin
    /// Continue the session `session` on this connection: `proof` shows the session's resume key bound to this
    /// connection, and `received` says how many of the remote agent's sequenced frames the local agent has
    /// processed, so that the remote agent sends again only the ones after.
    case resume(session: [UInt8], proof: [UInt8], received: UInt64)

    /// The first byte of SESSION's payload.
    enum Mode: UInt8 {
        case begin = 0
        case resume = 1
    }
}

/// The remote agent's answer to a SESSION that asks to continue a session; carried as one byte. Unknown values
/// read as `.unknown`.
package enum ResumeResult: UInt8, Sendable {
    /// The session continues on this connection.
    case resumed = 0
    /// The remote agent holds no such session (it restarted, or the session expired or was evicted); it closes
    /// the connection after this answer.
    case unknown = 1
}
