import Crypto

/// Every fixed bound of the multiplexer, each with its reason. Tunable values live in `TunnelSettings`.
package enum Limits {
    /// 32 KiB DATA payloads keep the 41 bytes of header and tags per frame under 0.13 % and amortise
    /// the two AEAD calls per frame, while one frame still fits a 64 KiB socket buffer twice.
    package static let maxDataPayload = 32 * 1024
    /// The largest datagram a flow carries: the most a UDP datagram over IPv4 holds (65,535 bytes less its IP and
    /// UDP headers). Carried whole in one DATAGRAM frame, never split, so that it arrives as it was sent or not at
    /// all; a larger one (possible over IPv6 only) is dropped and counted.
    package static let maxDatagram = 65_507
    /// The largest frame plaintext: header plus the largest payload, a whole datagram's. A receiver refuses
    /// longer frames.
    package static let maxFrameBody = Frame.headerSize + maxDatagram
    /// The largest sealed frame on the wire.
    static let maxSealedFrame = maxFrameBody + SealedFrame.overhead
    /// The link reader's receive buffer: eight full DATA frames, or four of the largest datagrams, per recv(2).
    static let receiveBufferSize = 8 * (Frame.headerSize + maxDataPayload + SealedFrame.overhead)
    /// The writer seals up to this many bytes of frames per send(2) call, amortising the syscall
    /// without holding a frame back: it only takes what is already queued. A frame that arrives while a batch
    /// is being sent waits for it, so a batch is also the scheduler's horizon: 64 KiB is 6.5 ms at 10 MB/s.
    static let writerBatchBytes = 64 * 1024
    /// A link socket's unsent bytes in the kernel (TCP_NOTSENT_LOWAT): enough that the writer's next batch is
    /// ready before the kernel runs dry, few enough that a frame queued now leaves soon after, not behind
    /// megabytes the send buffer grew to hold. Sized with the batch by measurement (docs/BENCHMARKS.md, "Fair
    /// scheduling"): on the emulated 10 MB/s path, an interactive stream beside four bulk ones had p99 0.35 s
    /// with 256 KiB batches and 128 KiB unsent, 0.25 s with 64 KiB and 32 KiB; loopback bulk was the same.
    static let linkNotSentLowWater = 32 * 1024
    /// Finished stream threads kept parked for the next stream: enough for a burst of short connections to
    /// reuse threads instead of creating one each (24 µs here), few enough that an agent at rest holds little.
    package static let maxParkedThreads = 128
    /// How long a parked thread waits for a stream before it exits.
    package static let parkedThreadTimeout = Duration.seconds(10)
    /// Stream and link threads only move bytes between buffers and sockets, but debug builds under
    /// ThreadSanitizer overflowed 256 KiB; 512 KiB is reserved address space, and only touched pages count
    /// towards memory. A stream thread touches two pages (glibc's thread descriptor and TLS take the top 5 KiB);
    /// a third, 40 MiB at 10,000 streams, is why its setup avoids getaddrinfo, getnameinfo and sprintf, whose
    /// frames alone exceed a kilobyte.
    package static let threadStackSize = 512 * 1024
    /// The largest PADDING payload a receiver accepts: more than the writer ever sends, far less than a DATA frame.
    package static let maxPadding = 1024
    /// PADDING the writer adds to an opening batch, drawn uniformly: with the 41 bytes of a sealed PADDING
    /// frame, an OPEN (46 bytes sealed) goes out as any of 512 sizes from 87 to 598 bytes.
    static let openingPadding = 0...511
    /// The first batches of every link are padded whatever they hold (the first PING, LISTENs, the first
    /// small DATA frames); after them only batches that open a stream (OPEN, OPEN_OK) are.
    static let paddedOpeningBatches = 8
    /// SOCKS clients a local agent lets negotiate at once. Each holds a thread for at most
    /// `--socks-handshake-timeout` and no stream slot; beyond this many, new SOCKS clients are reset at once,
    /// so clients trickling their handshakes cannot take every thread.
    static let maxSocksHandshakes = 256
    /// Descriptors a remote agent wants beyond `--max-pending`, for its links, streams and listeners, before it
    /// warns at start that the open-file limit is short.
    static let descriptorHeadroom: UInt64 = 1024
    /// Connections the handshake thread accepts per wake before it serves the pending ones again.
    static let acceptsPerWake = 64
    /// Seconds an opener waits for the answer to its OPEN before it resets the stream: the longest a remote agent
    /// may take to connect a target (its `--connect-timeout` is at most `TunnelSettings.Bounds.handshakeSeconds`)
    /// and a margin for the round trip.
    static let openAnswerTimeout = TunnelSettings.Bounds.handshakeSeconds + 10
    /// Seconds a stopping agent waits, for all its links at once, for each peer to close its side after the
    /// GOAWAY and end of stream, before closing them itself: a peer that is alive answers within a round trip.
    static let linkCloseWait = 2.0
    /// The longest PROXY v2 address block (after its 16-byte fixed part) read from a trusted balancer: an IPv6
    /// address pair is 36 bytes, and HAProxy's optional TLVs (ALPN, authority, unique id) fit well within 512; a
    /// stranger who could reach the gate through the balancer makes it buffer no more than this.
    static let maxProxyHeaderBody = 512
    /// The handshake thread closes connections past their deadline at most this often (nanoseconds), so that a
    /// table of thousands is not scanned per event; deadlines are random to the second anyway.
    static let pendingSweepInterval: UInt64 = 50_000_000
    /// Seconds between summary lines of connections turned away before authentication.
    static let rejectionReportInterval = 30.0
    /// Pending connections the kernel queues for our accept loops.
    static let listenBacklog: Int32 = 1024
    /// Answers the peer forces (PONG for its PING, RESET for an OPEN refused at once) that may wait for the writer
    /// while the peer reads none of them; one more ends the link. Every other control frame is bounded by the
    /// streams and the credit the peer was granted, but these only by how fast the peer sends: without a bound, a
    /// peer that never reads would make the queue grow for as long as it sends.
    static let maxQueuedAnswers = 1024
    /// What the opener of a stream may send before OPEN_OK (PROTOCOL.md §6, "Opening"): a client's first request
    /// goes out with the OPEN, one round trip to the first response instead of two. Fixed by the protocol, so
    /// the opener needs no answer to know it; 64 KiB holds the first request of HTTP, TLS, SSH and databases.
    package static let openingWindow = 64 * 1024
    /// The smallest window a stream gets when the link's receive budget is spent: enough to make progress, and
    /// never less than the opening window, which the answering end must be able to hold before its target is
    /// connected.
    static let minimumStreamWindow = openingWindow
    /// Seconds between the remote agent's probes of its cover (TLS transport): the cover's answer changes when
    /// its certificate is renewed or its server upgraded, which a probe every 10 minutes follows within minutes,
    /// at the cost of one TLS connection to the cover, which any browser could have made.
    static let coverRefreshInterval = 600.0
    /// Server names whose own cover answer the remote agent learns (TLS transport). Only authentic hellos add
    /// one, so this bounds what a key holder can make it probe; a deployment uses one or two.
    static let maxCoverNames = 16
    /// Strangers' connections relayed to the cover at once (TLS transport), with the connections still waiting
    /// for their hello. Each costs two descriptors and, only while one side reads slower than the other sends,
    /// a backlog of at most `coverRelayBacklog`: at most 16 MiB in all. Beyond it, an old relay is closed for a
    /// new one, as pending connections are shed.
    static let maxCoverRelays = 512
    /// Relays from one IPv4 address or IPv6 /64 at once: a browser opens six connections to a site, a scanner
    /// a few; one host cannot take every relay.
    static let maxCoverRelaysPerSource = 16
    /// Seconds a relay may carry nothing either way before it is closed. Longer than any web server keeps an
    /// idle connection (nginx 75 s, Apache 5 s, Caddy 5 min), so the cover, not the agent, decides when one ends.
    static let coverRelayIdleTimeout = 360.0
    /// Bytes a relay holds for a side that reads slower than the other sends; reading stops until they are sent.
    static let coverRelayBacklog = 16 * 1024
    /// The longest ClientHello record the TLS transport reads before it decides: its own are about 2 KiB
    /// (Chromium's, with the ML-KEM share); a longer one is not an agent's and is relayed as it arrives.
    static let maxTLSClientHello = 4096
    /// Datagram bytes a link's outbound queue holds; a datagram that finds it full is dropped and counted. About
    /// 700 full-MTU datagrams: 100 ms of a 10 MB/s path, the longest a datagram may wait anyway.
    static let datagramQueueBytes = 1024 * 1024
    /// The longest a datagram waits for the link's writer before it is dropped and counted instead of sent: beyond
    /// 100 ms a voice or game packet is worse than none (ITU-T G.114 finds one-way delay above 150 ms noticeable),
    /// and DNS asks again after a second or more. UDP's own contract: late traffic is dropped, never queued
    /// without limit.
    static let maxDatagramWait = Duration.milliseconds(100)
    /// Seconds a flow still awaiting an answer must have been idle before a cap may end it for a new one: longer
    /// than DNS clients wait for an answer before asking again (5 s for glibc and dig), so a question in flight
    /// keeps its flow.
    static let flowEvictionIdle = 5.0
    /// Flows drawn at random when a cap must end one for a new one: the idlest that may go is ended. With 16,
    /// one of the idlest sixteenth of the flows is picked nine times in ten, at a cost that does not grow with
    /// the number of flows.
    static let evictionSample = 16
    /// What a remote agent's flow holds for its target while the target's socket is being made (the name
    /// resolved, the allow rules checked): the first datagrams of a flow arrive right behind its FLOW_OPEN.
    static let heldDatagrams = 16
    static let heldDatagramBytes = 64 * 1024
    /// How often a UDP forward's thread looks for flows past their idle timeout: the timeout is kept to within
    /// a second, and the thread wakes once a second when no datagram comes.
    static let flowSweepInterval = 1.0
    /// The receive queue an agent asks for on each UDP socket it reads (a forward's, a flow's): 4 MiB holds about
    /// 1,700 full-MTU datagrams, 40 ms of a 50 MB/s stream, while the reading thread waits for a core. The kernel
    /// caps it at `net.core.rmem_max` (208 KiB on a stock Debian), and charges only what is queued.
    static let datagramReceiveBuffer = 4 * 1024 * 1024
    /// Window updates are sent once this fraction (1/n) of the window has been consumed: one WINDOW frame per
    /// eight full DATA frames of a 1 MiB window. With a half, an echoing target (whose replies wait for credit
    /// while its socket fills) held so much credit unreturned that one echo stream across 100 ms moved
    /// 74 MB/s in a 16 MiB window; with a quarter, 109 MB/s.
    static let windowUpdateDivisor = 4

    /// The fewest bytes `--link-max-bytes` may name: a connection moves at most about once per 1 MiB, so that a
    /// typo cannot make a link spend its time setting up connections.
    static let minimumRotationBytes = 1024 * 1024

    /// The shortest `--link-max-age`: a new connection a second at most.
    static let minimumRotationAge = 1.0

    /// Sequenced frames a link's reader processes before it has its writer acknowledge them even with nothing
    /// else to send, which bounds what the peer keeps when this side sends nothing (section 10).
    static let acknowledgeEveryFrames: UInt64 = 128

    /// Sequenced frames after which the writer acknowledges in any batch it sends; sooner, it does so only in
    /// batches that carry WINDOW, PING or PONG, which come with data consumed and with keepalives.
    static let acknowledgeInBatchAfterFrames: UInt64 = 16
}
