import Crypto

/// The stamp check at any clock: a key holder chooses its hello's stamp freely, and the agent's clock may read
/// anything, so every pair of 64-bit times must give the answer the rule gives, never a trap.
extension FuzzChecks {
    /// The input's first 24 bytes are the hello's stamp, the agent's clock and the agent's start (Unix
    /// milliseconds, big-endian; missing bytes are zero) and its next byte picks the transport: an authentic
    /// hello stamped then is accepted exactly when it is within the allowed skew of the clock and not before the
    /// start, and otherwise refused with the skew it has or as sent before the start.
    public static func handshakeClock(_ input: [UInt8]) {
        let padded = input + [UInt8](repeating: 0, count: max(0, 25 - input.count))
        let word = { (index: Int) in padded[index * 8..<index * 8 + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
        let (sentAt, now, start) = (word(0), word(1), word(2))
        let expected = expectedStampCheck(sentAt: sentAt, now: now, start: start)
        if padded[24] & 1 == 0 {
            guard let client = try? ClientHandshake(key: key, nowMillis: sentAt) else { return }
            let outcome = Result { () throws(CryptoError) in
                try ServerHandshake.verify(client.hello, keys: [key], nowMillis: now, notBefore: start)
            }
            precondition(outcome.map { _ in true } == expected, "stamp \(sentAt) at \(now) since \(start): \(outcome)")
        } else {
            guard let client = try? TLSClientHandshake(key: key) else { return }
            let hello = [UInt8](repeating: 0x16, count: 64)
            let random = [UInt8](repeating: 7, count: 32)
            let sessionID = client.sessionID(authenticating: hello, random: random[...], nowMillis: sentAt)
            let outcome = Result { () throws(CryptoError) in
                try TLSServerHandshake.open(
                    sessionID: sessionID[...], random: random[...], hello: hello, keys: [key], nowMillis: now,
                    notBefore: start)
            }
            precondition(outcome.map { _ in true } == expected, "stamp \(sentAt) at \(now) since \(start): \(outcome)")
        }
    }

    /// The stamp rule of PROTOCOL.md §3.1, in 128-bit arithmetic that no 64-bit input can overflow.
    static func expectedStampCheck(sentAt: UInt64, now: UInt64, start: UInt64) -> Result<Bool, CryptoError> {
        let difference = Int128(now) - Int128(sentAt)
        let distance = difference.magnitude
        guard distance <= UInt128(ServerHandshake.maximumClockSkew) * 1000 else {
            let seconds = Int64(clamping: distance / 1000)
            return .failure(.clockSkew(seconds: difference < 0 ? -seconds : seconds))
        }
        return sentAt >= start ? .success(true) : .failure(.sentBeforeStart)
    }
}
