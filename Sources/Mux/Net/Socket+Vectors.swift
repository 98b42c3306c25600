import Glibc

extension Socket {
    /// Linux's IOV_MAX (UIO_MAXIOV), which Glibc's module does not export: the most pieces one sendmsg takes.
    private static let maximumPieces = 1024

    /// sendmsg(2) until every byte of every piece is written, in order, as one stream of bytes: what a record
    /// layer uses to put headers before payloads without copying the payloads. `MSG_NOSIGNAL`, and `EINTR`
    /// retried, as in `sendAll`.
    func sendAll(_ pieces: [UnsafeRawBufferPointer]) throws(SocketError) {
        var vectors = pieces.filter { $0.count > 0 }.map {
            iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count)
        }
        var first = 0
        while first < vectors.count {
            let sent = vectors.withUnsafeMutableBufferPointer { buffer in
                var message = msghdr()
                message.msg_iov = buffer.baseAddress! + first
                message.msg_iovlen = min(buffer.count - first, Self.maximumPieces)
                return sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                let code = errno
                if code == EINTR { continue }
                throw SocketError(call: "sendmsg", code: code)
            }
            var left = sent
            while left > 0 {
                let length = vectors[first].iov_len
                if left < length {
                    vectors[first].iov_base = vectors[first].iov_base! + left
                    vectors[first].iov_len = length - left
                    left = 0
                } else {
                    left -= length
                    first += 1
                }
            }
        }
    }
}
