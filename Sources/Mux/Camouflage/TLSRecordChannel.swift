import Glibc

/// A link channel that carries every byte in TLS 1.3 application-data records on a TCP socket: what a link of
/// the TLS transport runs over once its handshake is done (docs/PROTOCOL.md §3.2). Sent bytes are cut into
/// records of at most `TLSRecord.maximumWrittenLength`, headers written beside the payloads (sendmsg), never
/// copied; received records are checked and their headers taken out in place. A record that TLS 1.3 would not
/// send here — another type, another version, a length out of range — fails the receive as `EPROTO`.
///
/// Threads: `receive` is called by one thread only (the link's reader) and alone uses `inbound`; `sendAll` by
/// one thread only (the link's writer) and alone uses `outbound`. `@unchecked Sendable` for that split: each
/// state has a single thread.
final class TLSRecordChannel: LinkChannel, @unchecked Sendable {
    private let socket: Socket
    private let inbound: TLSInboundRecords
    private let outbound: OutboundRecords

    /// Adopts `socket`, whose handshake is done. `prelude` is written before the first byte sent (the part of
    /// the server's flight the handshake stage could not send without blocking). With `skippingPeerFinished`,
    /// the peer's opening — its ChangeCipherSpec and its first application-data record, shaped like a TLS
    /// Finished — is read and dropped before any byte is delivered.
    init(socket: Socket, prelude: [UInt8] = [], skippingPeerFinished: Bool = false) {
        self.socket = socket
        inbound = TLSInboundRecords(expectingPeerFinished: skippingPeerFinished)
        outbound = OutboundRecords(prelude: prelude)
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        while true {
            let count = try socket.receive(into: buffer)
            if count == 0 { return 0 }
            let delivered = try inbound.strip(buffer.baseAddress!, count: count)
            if delivered > 0 { return delivered }
        }
    }

    func sendAll(_ bytes: UnsafeRawBufferPointer) throws(SocketError) {
        try outbound.flushPrelude(to: socket)
        var offset = 0
        while offset < bytes.count {
            // At most 16 records per call: 32 pieces, well under IOV_MAX, and 256 KiB, more than a writer batch.
            var pieces: [UnsafeRawBufferPointer] = []
            var records = 0
            while offset < bytes.count && records < OutboundRecords.recordsPerCall {
                let length = min(TLSRecord.maximumWrittenLength, bytes.count - offset)
                pieces.append(outbound.header(records, length: length))
                pieces.append(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length]))
                offset += length
                records += 1
            }
            try socket.sendAll(pieces)
        }
    }

    func setTimeouts(receive: Double, send: Double) {
        socket.setTimeouts(receive: receive, send: send)
    }

    func shutdown(_ direction: Socket.Direction) {
        socket.shutdown(direction)
    }

    func close() {
        socket.close()
    }
}

/// The receiving side's record state: where in the current record the stream is, and the header bytes of the
/// next one when a receive ended inside it. Owned by the reading thread.
package final class TLSInboundRecords {
    /// Payload bytes left in the current record.
    private var remaining = 0
    /// Whether the current record's payload is dropped (the peer's ChangeCipherSpec or Finished) rather than
    /// delivered.
    private var isSkipping = false
    /// Whether the current record is a ChangeCipherSpec, whose one byte must be 1.
    private var isChangeCipherSpec = false
    /// ChangeCipherSpec records still allowed: one before the peer's Finished, if it sends one.
    private var changeCipherSpecsAllowed: Int
    /// Application-data records still to drop before delivering: the peer's Finished.
    private var recordsToSkip: Int
    private var header: [UInt8] = []

    /// The state of a stream that starts, when `expectingPeerFinished`, with the peer's opening (at most one
    /// ChangeCipherSpec, then one application-data record to drop), and otherwise with application data.
    package init(expectingPeerFinished: Bool) {
        changeCipherSpecsAllowed = expectingPeerFinished ? 1 : 0
        recordsToSkip = expectingPeerFinished ? 1 : 0
        header.reserveCapacity(TLSRecord.headerSize)
    }

    /// Takes the record headers (and skipped payloads) out of `count` received bytes at `base`, in place;
    /// returns how many payload bytes are left at `base` for the caller.
    package func strip(_ base: UnsafeMutableRawPointer, count: Int) throws(SocketError) -> Int {
        var read = 0
        var write = 0
        while read < count {
            if remaining > 0 {
                let take = min(remaining, count - read)
                if isChangeCipherSpec {
                    guard base.load(fromByteOffset: read, as: UInt8.self) == 1 else { throw Self.malformed }
                } else if !isSkipping {
                    if write != read { memmove(base + write, base + read, take) }
                    write += take
                }
                read += take
                remaining -= take
                continue
            }
            header.append(base.load(fromByteOffset: read, as: UInt8.self))
            read += 1
            if header.count == TLSRecord.headerSize { try begin(TLSRecord.Header(header)) }
        }
        return write
    }

    private static let malformed = SocketError(call: "TLS record", code: EPROTO)

    private func begin(_ record: TLSRecord.Header) throws(SocketError) {
        header.removeAll(keepingCapacity: true)
        remaining = record.length
        isChangeCipherSpec = record.isChangeCipherSpec && changeCipherSpecsAllowed > 0
        if isChangeCipherSpec {
            changeCipherSpecsAllowed -= 1
            isSkipping = true
            return
        }
        guard record.isApplicationData else { throw Self.malformed }
        changeCipherSpecsAllowed = 0  // none after application data
        isSkipping = recordsToSkip > 0
        if isSkipping { recordsToSkip -= 1 }
    }
}

/// The sending side's record state: headers for the records of one call, and the prelude still to send. Owned
/// by the writing thread.
private final class OutboundRecords {
    static let recordsPerCall = 16
    private var prelude: [UInt8]
    private let headers = UnsafeMutableRawBufferPointer.allocate(
        byteCount: recordsPerCall * TLSRecord.headerSize, alignment: 1)

    init(prelude: [UInt8]) {
        self.prelude = prelude
    }

    deinit {
        headers.deallocate()
    }

    /// Sends what is left of the prelude, once.
    func flushPrelude(to socket: Socket) throws(SocketError) {
        guard !prelude.isEmpty else { return }
        try socket.sendAll(prelude)
        prelude = []
    }

    /// The header of the `index`th record of this call, `length` bytes long, in storage that lives until the
    /// next call.
    func header(_ index: Int, length: Int) -> UnsafeRawBufferPointer {
        let slot = UnsafeMutableRawBufferPointer(
            rebasing: headers[index * TLSRecord.headerSize..<(index + 1) * TLSRecord.headerSize])
        for (offset, byte) in TLSRecord.header(.applicationData, length: length).enumerated() { slot[offset] = byte }
        return UnsafeRawBufferPointer(slot)
    }
}
