import Glibc

/// How the responses load talks to the benchmark's target, beside echo on the same port (so that every route,
/// which forwards one target port, carries both): a connection that opens with `greeting` gets it echoed like
/// any bytes, then is served responses instead of echo. Each request is 8 bytes, the response size and a
/// sequence number (both UInt32, little-endian); its response is that many bytes: the request itself, then the
/// test pattern from its start. The target echoes every byte as it comes until the greeting is whole, so that a
/// client of the other loads whose first bytes happen to begin like the greeting is never kept waiting.
enum ResponseProtocol {
    /// The bytes that open a responses connection.
    static let greeting = Array("tcptunnel-bench responses 1\r\n".utf8)
    /// Bytes per request.
    static let requestSize = 8
    /// The smallest and largest response a request may ask for.
    static let sizes = requestSize...(64 << 20)

    /// The request for a response of `size` bytes, numbered `sequence`.
    static func request(size: Int, sequence: UInt32) -> [UInt8] {
        withUnsafeBytes(of: UInt32(size).littleEndian) { Array($0) }
            + withUnsafeBytes(of: sequence.littleEndian) { Array($0) }
    }

    /// The response size a request asks for, or nil when it is outside `sizes`.
    static func responseSize(of request: UnsafeRawBufferPointer) -> Int? {
        let size = Int(UInt32(littleEndian: request.loadUnaligned(as: UInt32.self)))
        return sizes.contains(size) ? size : nil
    }

    /// A response of `count` bytes with its first `requestSize` bytes (the request's echo) still to fill in.
    static func body(count: Int, pattern: TestPattern) -> [UInt8] {
        var body = [UInt8](repeating: 0, count: requestSize)
        body.reserveCapacity(count)
        while body.count < count {
            pattern.withBytes(at: body.count - requestSize, upTo: count - body.count) { body += $0 }
        }
        return body
    }

    /// Whether `received` is whole and exactly the response to `request` (`pattern` holds what follows the
    /// request's echo).
    static func isResponse(
        _ received: UnsafeRawBufferPointer, to request: [UInt8], pattern: TestPattern
    ) -> Bool {
        guard received.count >= requestSize,
            request.withUnsafeBytes({ memcmp($0.baseAddress!, received.baseAddress!, requestSize) }) == 0
        else { return false }
        return pattern.matches(UnsafeRawBufferPointer(rebasing: received[requestSize...]), at: 0)
    }
}
