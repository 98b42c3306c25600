import Foundation

/// Starts a named thread with a small, explicit stack. The name is set inside the thread because on
/// Linux a name assigned before `start()` never reaches the OS thread.
func startThread(named name: String, stackSize: Int = Limits.threadStackSize, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread {
        Thread.current.name = name
        body()
    }
    thread.stackSize = stackSize
    thread.start()
}

/// A one-shot event that threads can wait for with a timeout (Foundation's `Thread` has no join).
final class Completion: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let isDone = Locked(false)

    /// Marks the event as happened and wakes every waiter, now and later. Idempotent.
    func complete() {
        let first = isDone.withLock { done in
            defer { done = true }
            return !done
        }
        if first { semaphore.signal() }
    }

    /// Waits until `complete()` was called or `seconds` pass; returns whether it was called.
    @discardableResult
    func wait(seconds: Double) -> Bool {
        guard semaphore.wait(timeout: .now() + seconds) == .success else { return false }
        semaphore.signal()  // let the next waiter through too
        return true
    }

    /// Whether `complete()` was called.
    var hasCompleted: Bool { isDone.withLock { $0 } }
}
