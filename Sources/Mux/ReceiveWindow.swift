/// Flow-control arithmetic for the receiving half of one stream. A value type: the stream's lock guards it.
///
/// The peer may have at most `size` bytes in flight or buffered here. As the stream's socket consumes
/// bytes they are returned to the peer in WINDOW frames, once half the window has been consumed, so the
/// peer always keeps half a window of credit in hand. The window grows back towards its target size when
/// the link's budget allows it.
struct ReceiveWindow {
    /// Bytes of credit this stream holds (and has reserved from the link budget).
    private(set) var size: Int
    /// The size this window grows towards.
    let targetSize: Int
    /// Bytes the peer may still send.
    private(set) var peerCredit: Int
    /// Bytes consumed but not yet returned to the peer.
    private var unreturned = 0

    /// A window of `size` bytes, all of it granted to the peer at once.
    init(size: Int, targetSize: Int) {
        self.size = size
        self.targetSize = targetSize
        peerCredit = size
    }

    /// Accounts for `count` received bytes. Returns `false` if they exceed the peer's credit: a protocol violation.
    mutating func receive(_ count: Int) -> Bool {
        guard count <= peerCredit else { return false }
        peerCredit -= count
        return true
    }

    /// Accounts for `count` bytes written out, and returns the increment to send to the peer, if one is due.
    /// `grow` is asked for extra bytes (up to its argument) to bring the window back to its target size.
    mutating func consume(_ count: Int, grow: (Int) -> Int) -> UInt32? {
        unreturned += count
        guard unreturned >= size / Limits.windowUpdateDivisor else { return nil }
        let extra = size < targetSize ? grow(targetSize - size) : 0
        size += extra
        let increment = unreturned + extra
        peerCredit += increment
        unreturned = 0
        return UInt32(increment)
    }
}
