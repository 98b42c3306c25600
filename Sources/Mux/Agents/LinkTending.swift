import Logging

/// What a local agent's link supervisor remembers between its looks at a link (`LocalAgent.tend`): planned moves
/// that failed, connections lost soon after each resumption, and a connection's silence.

/// Attempts to move a link to a fresh connection, which back off while they fail (a remote agent that refuses
/// connections, a name that does not resolve) instead of coming every look.
struct Retries {
    private var delay = Backoff.initialDelay
    private var next = ContinuousClock.now
    let maximumDelay: Double

    init(maximumDelay: Double) {
        self.maximumDelay = maximumDelay
    }

    /// Whether the next attempt may be made now.
    var isDue: Bool { ContinuousClock.now >= next }

    mutating func failed(maximumDelay cap: Double) {
        next = .now + .seconds(Backoff.jittered(delay))
        delay = min(Backoff.next(after: delay), min(cap, maximumDelay))
    }

    mutating func succeeded() {
        delay = Backoff.initialDelay
        next = .now
    }
}

/// Lost connections of one link. A loss is a repeat of the one before when the connection since its resumption
/// neither lived `stableFor` seconds nor got a frame acknowledged (a path that cuts each connection before what is
/// sent again has crossed): repeats wait longer before each new attempt, and count their resume timeout from the
/// first loss of the series, so that such a path cannot keep the agents reconnecting forever. A connection that
/// made progress, however short its life, starts afresh: its loss costs a reconnect, no more.
struct Losses {
    /// A connection that lived this long after its resumption was not a repeat of the loss before it.
    static let stableFor = 10.0

    private var lastResumed: (at: ContinuousClock.Instant, acknowledged: UInt64)?
    private var seriesStart: ContinuousClock.Instant?
    private var delay = 0.0

    /// Records a loss, with `acknowledged` frames acknowledged by then, and waits as its series asks (until
    /// `wait` completes, at most); returns when the resume timeout of the series started, or `nil` once it has
    /// passed.
    mutating func lost(acknowledged: UInt64, resumeTimeout: Double, wait: Completion) -> ContinuousClock.Instant? {
        let now = ContinuousClock.now
        if let lastResumed, now - lastResumed.at < .seconds(Self.stableFor), acknowledged <= lastResumed.acknowledged,
            let seriesStart
        {
            guard now - seriesStart < .seconds(resumeTimeout) else { return nil }
            delay = delay == 0 ? Backoff.initialDelay : Backoff.next(after: delay)
            wait.wait(seconds: Backoff.jittered(delay))
            return seriesStart
        }
        seriesStart = now
        delay = 0
        return now
    }

    /// Records that the link resumed, with `acknowledged` frames acknowledged then.
    mutating func resumed(acknowledged: UInt64) {
        lastResumed = (.now, acknowledged)
    }
}

/// A connection's silence: a connection that owes an answer (a frame sent and not acknowledged) and has received
/// nothing for four round trips, at least 2 s, is stalled; halfway there it is sent a PING, which a live peer
/// answers at once. An idle connection, owed nothing, is never probed: its silence is the peer's too. Each stall
/// within a minute of the one before doubles the silence needed (up to a minute), so that a peer too loaded to
/// answer for seconds at a time is not made busier still by a new connection after each of them.
struct SilenceWatch {
    /// The shortest silence after which a connection counts as stalled, whatever the round trip.
    static let minimumStall = 2.0
    /// The most the silence needed grows to after repeated stalls.
    static let maximumStall = 60.0

    private var probed = false
    private var reported = false
    private var factor = 1.0
    private var lastStall: ContinuousClock.Instant?

    /// Whether `connection` of `link` has stalled; probes it, and says so once per stall in the log.
    mutating func check(_ connection: LinkConnection, of link: Link, logger: Logger) -> Bool {
        if let lastStall, ContinuousClock.now - lastStall > .seconds(Self.maximumStall) { factor = 1 }
        let silence = connection.silence
        let roundTrip = link.roundTrip?.inSeconds ?? 0
        let stallAfter = min(Self.maximumStall, factor * max(Self.minimumStall, 4 * roundTrip))
        guard silence >= stallAfter / 2, link.awaitsAcknowledgement else {
            (probed, reported) = (false, false)
            return false
        }
        if !probed {
            link.send(link.makePing())
            probed = true
        }
        guard silence >= stallAfter else { return false }
        if !reported {
            reported = true
            factor = min(factor * 2, Self.maximumStall / Self.minimumStall)
            lastStall = .now
            logger.info(
                "\(link.name): nothing received for \(Backoff.format(silence)); moving to a fresh connection as soon as one can be made"
            )
        }
        return true
    }
}
