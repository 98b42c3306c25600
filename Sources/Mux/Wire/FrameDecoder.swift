import Crypto

/// Reads frames out of the sealed byte stream of one link direction. Owned by the link's reader thread.
///
/// Bytes are received straight into a fixed buffer, and each frame is opened where it lies, so that a DATA
/// payload can be written to its stream's connection from there; `nextReceivedFrame()` returns `nil` when it
/// needs more bytes and throws for anything that is never valid. A body longer than `Limits.maxFrameBody` is refused as soon
/// as its sealed length block is opened, before any of it is buffered.
package struct FrameDecoder {
    private var opener: FrameOpener
    /// Received bytes from `start` to `end`; frames are opened in place here.
    private let buffer = ByteBuffer(capacity: Limits.receiveBufferSize)
    private var start = 0
    private var end = 0
    /// The opened length of a body whose bytes have not all arrived yet. Its nonce is already spent.
    private var pendingBodyLength: Int?

    package init(opener: FrameOpener) {
        self.opener = opener
    }

    /// Fills free buffer space by calling `read` once; returns what `read` returned (0 means end of stream).
    /// Invalidates the payload of the last `ReceivedFrame.data`.
    mutating func receive<E: Error>(using read: (UnsafeMutableRawBufferPointer) throws(E) -> Int) throws(E) -> Int {
        if start > 0 && buffer.capacity - end < Limits.maxSealedFrame {
            buffer.base.copyMemory(from: buffer.base + start, byteCount: end - start)
            end -= start
            start = 0
        }
        let count = try read(UnsafeMutableRawBufferPointer(start: buffer.base + end, count: buffer.capacity - end))
        end += count
        return count
    }

    /// Appends bytes as if they had been received (for callers that already hold them).
    package mutating func receive(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let chunk = receive { free in
                let n = min(free.count, bytes.count - offset)
                bytes.withUnsafeBytes { free.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
                return n
            }
            offset += chunk
            precondition(chunk > 0, "decoder buffer full: call nextFrame() between receives")
        }
    }

    /// The next complete frame, the payload of DATA and DATAGRAM left where it was opened, or `nil` if more bytes
    /// are needed.
    package mutating func nextReceivedFrame() throws(FrameError) -> ReceivedFrame? {
        guard let body = try openNextBody() else { return nil }
        if let frame = try FrameCodec.decodeInPlace(body) { return frame }
        return .other(try FrameCodec.decode(body))
    }

    /// The next complete frame, as a value of its own, or `nil` if more bytes are needed.
    package mutating func nextFrame() throws(FrameError) -> Frame? {
        guard let body = try openNextBody() else { return nil }
        return try FrameCodec.decode(body)
    }

    /// Opens the next complete body in place and returns its plaintext, or `nil` if more bytes are needed.
    private mutating func openNextBody() throws(FrameError) -> UnsafeRawBufferPointer? {
        if pendingBodyLength == nil {
            guard end - start >= SealedFrame.lengthBlockSize else { return nil }
            let block = UnsafeRawBufferPointer(start: buffer.base + start, count: SealedFrame.lengthBlockSize)
            let length = try Result { () throws(CryptoError) in try opener.openLength(block) }
                .mapError(FrameError.init).get()
            guard length <= Limits.maxFrameBody else { throw .tooLong(length: length, limit: Limits.maxFrameBody) }
            guard length >= Frame.headerSize else { throw .tooShort(length: length) }
            start += SealedFrame.lengthBlockSize
            pendingBodyLength = length
        }
        let length = pendingBodyLength!
        let sealedLength = length + SealedFrame.tagSize
        guard end - start >= sealedLength else { return nil }
        let body = buffer.base + start
        try Result { () throws(CryptoError) in
            try opener.openBody(UnsafeRawBufferPointer(start: body, count: sealedLength), into: body)
        }.mapError(FrameError.init).get()
        start += sealedLength
        pendingBodyLength = nil
        return UnsafeRawBufferPointer(start: body, count: length)
    }
}

/// A frame as the link's reader receives it.
package enum ReceivedFrame {
    /// DATA for a stream. The payload lies in the decoder's buffer, where it was opened: valid only until the
    /// decoder next receives.
    case data(StreamID, UnsafeRawBufferPointer)
    /// A DATAGRAM for a flow, its payload in the decoder's buffer like DATA's.
    case datagram(FlowID, UnsafeRawBufferPointer)
    /// Any other frame.
    case other(Frame)
}
