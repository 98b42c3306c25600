import Crypto

/// A fresh random key for one test.
func makeKey() throws -> PreSharedKey {
    try PreSharedKey(base64: PreSharedKey.generateBase64(), source: "test key")
}

/// Runs a complete handshake between two holders of `key` and returns both ends' session keys.
func handshake(
    clientKey: PreSharedKey, serverKey: PreSharedKey, now: UInt64 = 1_800_000_000_000
) throws -> (client: SessionKeys, server: SessionKeys) {
    let client = try ClientHandshake(key: clientKey, nowMillis: now)
    let (reply, serverKeys) = try ServerHandshake.verify(client.hello, keys: [serverKey], nowMillis: now).respond()
    return (try client.receive(serverHello: reply), serverKeys)
}

/// Seals `plaintext` with `sealer` and returns the sealed bytes.
func seal(_ plaintext: [UInt8], with sealer: inout FrameSealer) throws -> [UInt8] {
    var output = [UInt8](repeating: 0, count: plaintext.count + SealedFrame.overhead)
    try plaintext.withUnsafeBytes { raw in
        try output.withUnsafeMutableBytes { out in try sealer.seal(raw, into: out.baseAddress!) }
    }
    return output
}

/// Opens one sealed frame (length block then body) and returns its plaintext.
func open(_ sealed: [UInt8], with opener: inout FrameOpener) throws -> [UInt8] {
    let length = try sealed.withUnsafeBytes { raw in
        try opener.openLength(UnsafeRawBufferPointer(rebasing: raw[..<SealedFrame.lengthBlockSize]))
    }
    let body = Array(sealed[SealedFrame.lengthBlockSize...])
    guard body.count == length + SealedFrame.tagSize else { throw CryptoError.forged }
    var plaintext = [UInt8](repeating: 0, count: length)
    try body.withUnsafeBytes { raw in
        try plaintext.withUnsafeMutableBytes { out in try opener.openBody(raw, into: out.baseAddress!) }
    }
    return plaintext
}
