/// A value guarded by a pthread-backed lock that ThreadSanitizer understands.
package final class Locked<Value> {
    private let lock = PosixMutex()
    private var value: Value  // guarded by `lock`

    package init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with exclusive access to the value.
    package func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

extension Locked: @unchecked Sendable where Value: Sendable {}  // every access goes through `lock`
