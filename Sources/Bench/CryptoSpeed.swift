import Crypto
import Mux

/// How fast this machine seals frames with the tunnel's own `FrameSealer` on one core: the floor of
/// tcptunnel's CPU cost per byte, against which its bulk numbers can be read.
enum CryptoSpeed {
    /// Seals 32 KiB frames (the largest DATA payload) for `seconds` under keys from a real handshake and
    /// returns payload MB (10^6 bytes) per second.
    static func sealMegabytesPerSecond(seconds: Double = 0.5) throws(BenchError) -> Double {
        let payloadSize = 32 * 1024
        var sealer: FrameSealer
        do {
            let key = try PreSharedKey(base64: PreSharedKey.generateBase64(), source: "benchmark key")
            let now = UnixClock.nowMillis()
            let client = try ClientHandshake(key: key, nowMillis: now)
            let (reply, _) = try ServerHandshake.verify(client.hello, keys: [key], nowMillis: now).respond()
            sealer = try client.receive(serverHello: reply).clientSide().sealer
        } catch {
            throw BenchError("cannot set up the crypto measurement: \(error)")
        }
        let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: payloadSize, alignment: 16)
        let output = UnsafeMutableRawPointer.allocate(byteCount: payloadSize + SealedFrame.overhead, alignment: 16)
        defer {
            payload.deallocate()
            output.deallocate()
        }
        payload.initializeMemory(as: UInt8.self, repeating: 0x5A)
        let start = ContinuousClock.now
        var frames = 0
        repeat {
            for _ in 0..<64 {
                do {
                    try sealer.seal(UnsafeRawBufferPointer(payload), into: output)
                } catch {
                    throw BenchError("crypto measurement: \(error)")
                }
            }
            frames += 64
        } while start.duration(to: .now).seconds < seconds
        return Double(frames * payloadSize) / start.duration(to: .now).seconds / 1e6
    }
}
