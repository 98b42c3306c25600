/// How the peer answered an OPEN.
package enum StreamOpenOutcome: Equatable {
    /// OPEN_OK: the peer's side is connected.
    case established
    /// RESET, with the peer's reason.
    case refused(ResetReason)
    /// The link ended first (or this side aborted the stream).
    case linkClosed
    /// The peer did not answer within `Limits.openAnswerTimeout`; the stream was reset.
    case unanswered
}
