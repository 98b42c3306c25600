/// Flow-control arithmetic for the receiving half of one stream. A value type: the stream's lock guards it.
///
/// The peer may have at most `size` bytes in flight or buffered here. As the stream's socket consumes
/// bytes they are returned to the peer in WINDOW frames, once a quarter of the window has been consumed
/// (`Limits.windowUpdateDivisor`), so the peer always keeps three quarters of a window of credit in hand. The
/// window grows back towards its target size when the link's budget allows it.
///
/// Auto-tuning: when half a window is consumed in less than two round trips, the peer is sending as fast as
/// its credit allows (the window, not the path or the reader, limits the stream), so the target doubles, up
/// to `maxSize`, judged over each half window consumed, whatever the cadence of the updates. Throughput of one
/// stream is at most window ÷ round-trip time; this lets a stream across a long path open its window to the
/// path's bandwidth-delay product, while streams on short paths or with slow readers keep the initial size.
package struct ReceiveWindow {
    /// Bytes of credit this stream holds (and has reserved from the link budget).
    private(set) var size: Int
    /// The size this window grows towards.
    private(set) var targetSize: Int
    /// The largest target auto-tuning may set.
    let maxSize: Int
    /// Bytes the peer may still send.
    private(set) var peerCredit: Int
    /// Bytes consumed but not yet returned to the peer.
    private var unreturned = 0
    /// When auto-tuning's current span began (when half a window had last been consumed), and the bytes
    /// consumed since.
    private var spanStart: ContinuousClock.Instant?
    private var consumedInSpan = 0

    /// A window of `size` bytes, all of it granted to the peer at once, that auto-tuning may grow to `maxSize`.
    package init(size: Int, targetSize: Int, maxSize: Int? = nil) {
        self.size = size
        self.targetSize = targetSize
        self.maxSize = max(maxSize ?? targetSize, targetSize)
        peerCredit = size
    }

    /// Bytes received and not yet credited back to the peer, whether written out or still held.
    var outstandingBytes: Int { size - peerCredit }

    /// Accounts for `count` received bytes. Returns `false` if they exceed the peer's credit: a protocol violation.
    mutating func receive(_ count: Int) -> Bool {
        guard count <= peerCredit else { return false }
        peerCredit -= count
        return true
    }

    /// Accounts for `count` bytes written out, and returns the increment to send to the peer, if one is due.
    /// `grow` is asked for extra bytes (up to its argument) to bring the window back to its target size.
    /// `roundTrip` is the link's measured round-trip time, if known; `now` is when the bytes were written.
    mutating func consume(
        _ count: Int, roundTrip: Duration? = nil, now: ContinuousClock.Instant = .now, grow: (Int) -> Int
    ) -> UInt32? {
        unreturned += count
        tune(afterConsuming: count, roundTrip: roundTrip, now: now)
        guard unreturned >= size / Limits.windowUpdateDivisor else { return nil }
        let extra = size < targetSize ? grow(targetSize - size) : 0
        size += extra
        let increment = unreturned + extra
        peerCredit += increment
        unreturned = 0
        return UInt32(increment)
    }

    /// Doubles the target when half a window was consumed within two round trips of the previous half; the
    /// first half window only starts the clock.
    private mutating func tune(afterConsuming count: Int, roundTrip: Duration?, now: ContinuousClock.Instant) {
        consumedInSpan += count
        guard consumedInSpan >= size / 2 else { return }
        if let roundTrip, let spanStart, now - spanStart < roundTrip * 2, size >= targetSize {
            targetSize = min(maxSize, targetSize * 2)
        }
        spanStart = now
        consumedInSpan = 0
    }
}
