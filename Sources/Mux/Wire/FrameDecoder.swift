import Crypto

/// Reads frames out of the sealed byte stream of one link direction. Owned by the link's reader thread.
///
/// Bytes are received straight into a fixed buffer; `nextFrame()` returns `nil` when it needs more of them
/// and throws for anything that is never valid. A body longer than `Limits.maxFrameBody` is refused as soon
/// as its sealed length block is opened, before any of it is buffered.
package struct FrameDecoder {
    private var opener: FrameOpener
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    /// The opened length of a body whose bytes have not all arrived yet. Its nonce is already spent.
    private var pendingBodyLength: Int?
    private var plaintext: [UInt8]

    package init(opener: FrameOpener) {
        self.opener = opener
        buffer = [UInt8](repeating: 0, count: Limits.receiveBufferSize)
        plaintext = [UInt8](repeating: 0, count: Limits.maxFrameBody)
    }

    /// Fills free buffer space by calling `read` once; returns what `read` returned (0 means end of stream).
    mutating func receive<E: Error>(using read: (UnsafeMutableRawBufferPointer) throws(E) -> Int) throws(E) -> Int {
        if start > 0 && buffer.count - end < Limits.maxSealedFrame {
            buffer.withUnsafeMutableBytes { raw in
                raw.baseAddress!.copyMemory(from: raw.baseAddress! + start, byteCount: end - start)
            }
            end -= start
            start = 0
        }
        let count = try buffer.withUnsafeMutableBytes { raw in
            Result { () throws(E) in try read(UnsafeMutableRawBufferPointer(rebasing: raw[end...])) }
        }.get()
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

    /// The next complete frame, or `nil` if more bytes are needed.
    package mutating func nextFrame() throws(FrameError) -> Frame? {
        if pendingBodyLength == nil {
            guard end - start >= SealedFrame.lengthBlockSize else { return nil }
            let opened = buffer.withUnsafeBytes { raw in
                let block = UnsafeRawBufferPointer(rebasing: raw[start..<start + SealedFrame.lengthBlockSize])
                return Result { () throws(CryptoError) in try opener.openLength(block) }
            }
            let length = try opened.mapError(FrameError.init).get()
            guard length <= Limits.maxFrameBody else { throw .tooLong(length: length, limit: Limits.maxFrameBody) }
            guard length >= Frame.headerSize else { throw .tooShort(length: length) }
            start += SealedFrame.lengthBlockSize
            pendingBodyLength = length
        }
        let length = pendingBodyLength!
        let sealedLength = length + SealedFrame.tagSize
        guard end - start >= sealedLength else { return nil }
        let opened = buffer.withUnsafeBytes { raw in
            plaintext.withUnsafeMutableBytes { out in
                let sealed = UnsafeRawBufferPointer(rebasing: raw[start..<start + sealedLength])
                return Result { () throws(CryptoError) in try opener.openBody(sealed, into: out.baseAddress!) }
            }
        }
        try opened.mapError(FrameError.init).get()
        start += sealedLength
        pendingBodyLength = nil
        return try plaintext.withUnsafeBytes { raw in
            Result { () throws(FrameError) in try FrameCodec.decode(UnsafeRawBufferPointer(rebasing: raw[..<length])) }
        }.get()
    }
}
