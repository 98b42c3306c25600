import CSodium

/// Key bytes in libsodium's guarded memory: locked in RAM, read-only after `init`, wiped when released.
///
/// `@unchecked Sendable`: the bytes are written only inside `init` and are read-only afterwards.
final class SecretBytes: @unchecked Sendable {
    private let pointer: UnsafeMutableRawPointer
    /// The number of secret bytes.
    let count: Int

    /// Allocates `count` guarded bytes and lets `fill` write them once.
    /// Throws when the process has no memory or memory mappings left for them (each allocation maps guard
    /// pages, so an agent near `vm.max_map_count` with tens of thousands of threads can get here); the
    /// handshake that needed the key fails, not the process. A failed mlock does not count: libsodium
    /// then keeps the bytes unlocked.
    init(count: Int, fill: (UnsafeMutablePointer<UInt8>) -> Void) throws(CryptoError) {
        Sodium.ensureReady()
        guard let raw = sodium_malloc(count) else { throw .outOfGuardedMemory }
        pointer = raw
        self.count = count
        fill(raw.assumingMemoryBound(to: UInt8.self))
        _ = sodium_mprotect_readonly(raw)
    }

    /// Calls `body` with read access to the secret bytes. The pointer must not escape `body`.
    func withBytes<R>(_ body: (UnsafePointer<UInt8>) throws -> R) rethrows -> R {
        try body(UnsafePointer(pointer.assumingMemoryBound(to: UInt8.self)))
    }

    deinit {
        _ = sodium_mprotect_readwrite(pointer)
        sodium_free(pointer)  // sodium_free wipes before freeing
    }
}

/// Overwrites `bytes` with zeros in a way the optimiser cannot remove.
public func wipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { sodium_memzero($0.baseAddress, $0.count) }
}
