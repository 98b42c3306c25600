import Crypto

/// Every fixed bound of the multiplexer, each with its reason. Tunable values live in `TunnelSettings`.
package enum Limits {
    /// 32 KiB DATA payloads keep the 41 bytes of header and tags per frame under 0.13 % and amortise
    /// the two AEAD calls per frame, while one frame still fits a 64 KiB socket buffer twice.
    package static let maxDataPayload = 32 * 1024
    /// The largest frame plaintext: header plus the largest payload. A receiver refuses longer frames.
    package static let maxFrameBody = Frame.headerSize + maxDataPayload
    /// The largest sealed frame on the wire.
    static let maxSealedFrame = maxFrameBody + SealedFrame.overhead
    /// The link reader's receive buffer: several full frames per recv(2) call.
    static let receiveBufferSize = 8 * maxSealedFrame
    /// The writer seals up to this many bytes of frames per send(2) call, amortising the syscall
    /// without holding a frame back: it only takes what is already queued.
    static let writerBatchBytes = 256 * 1024
    /// Stream and link threads only move bytes between buffers and sockets, but debug builds under
    /// ThreadSanitizer overflowed 256 KiB; 512 KiB is reserved address space, and only touched pages count
    /// towards memory.
    package static let threadStackSize = 512 * 1024
    /// Handshakes in progress at once on a remote agent. Each holds a thread for up to 1.5 × the handshake
    /// timeout (connections that fail the handshake are held that long on purpose), so this bounds the threads a
    /// scanner can pin; beyond it, new connections are closed at once.
    static let maxPendingHandshakes = 256
    /// Pending connections the kernel queues for our accept loops.
    static let listenBacklog: Int32 = 1024
    /// The smallest window a stream gets when the link's receive budget is spent: enough to make progress.
    static let minimumStreamWindow = 64 * 1024
    /// Window updates are sent once this fraction (1/n) of the window has been consumed, halving the
    /// number of WINDOW frames compared with acknowledging every DATA frame, while the sender keeps
    /// half a window of credit in hand.
    static let windowUpdateDivisor = 2
}
