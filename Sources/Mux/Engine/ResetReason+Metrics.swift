extension ResetReason {
    /// The reason as a Prometheus label value.
    var metricLabel: String {
        switch self {
        case .aborted: "aborted"
        case .targetRefused: "connection_refused"
        case .targetUnreachable: "host_unreachable"
        case .tooManyStreams: "too_many_streams"
        case .protocolError: "protocol_error"
        case .notAllowed: "not_allowed"
        case .timedOut: "timed_out"
        case .nameNotResolved: "name_not_resolved"
        case .networkUnreachable: "network_unreachable"
        }
    }
}
