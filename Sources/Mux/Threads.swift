import Foundation
import Glibc

/// Starts a detached, named thread with a small, explicit stack.
///
/// pthreads directly rather than Foundation's `Thread`, because `Thread.start()` traps when the system is out
/// of threads; here that is a `ThreadError` the caller survives (it refuses one client, not the whole agent).
package func startThread(
    named name: String, stackSize: Int = Limits.threadStackSize, _ body: @escaping @Sendable () -> Void
) throws(ThreadError) {
    let context = Unmanaged.passRetained(ThreadContext(name: name, body: body))
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setstacksize(&attributes, stackSize)
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    var thread = pthread_t()
    let status = pthread_create(
        &thread, &attributes,
        { raw in
            let context = Unmanaged<ThreadContext>.fromOpaque(raw!).takeRetainedValue()
            nameCurrentThread(context.name)
            context.body()
            return nil
        }, context.toOpaque())
    guard status == 0 else {
        context.release()
        throw ThreadError(code: status)
    }
}

/// Names the calling thread for `top -H`, `ps -L` and debuggers. Through /proc because glibc's
/// pthread_setname_np is not visible to Swift without _GNU_SOURCE; Linux keeps the first 15 bytes.
private func nameCurrentThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    defer { close(fd) }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}

/// What a new thread runs, handed over through pthread_create's context pointer.
private final class ThreadContext {
    let name: String
    let body: @Sendable () -> Void

    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

/// A thread could not be started: the process or system is out of threads or memory.
public struct ThreadError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The error pthread_create returned (EAGAIN when out of threads).
    public let code: Int32

    public var description: String { "cannot start a thread: \(String(cString: strerror(code)))" }
}

/// A one-shot event that threads can wait for with a timeout (Foundation's `Thread` has no join).
package final class Completion: Sendable {
    package init() {}

    private let semaphore = DispatchSemaphore(value: 0)
    private let isDone = Locked(false)

    /// Marks the event as happened and wakes every waiter, now and later. Idempotent.
    package func complete() {
        let first = isDone.withLock { done in
            defer { done = true }
            return !done
        }
        if first { semaphore.signal() }
    }

    /// Waits until `complete()` was called or `seconds` pass; returns whether it was called.
    @discardableResult
    package func wait(seconds: Double) -> Bool {
        guard semaphore.wait(timeout: .now() + seconds) == .success else { return false }
        semaphore.signal()  // let the next waiter through too
        return true
    }

    /// Whether `complete()` was called.
    package var hasCompleted: Bool { isDone.withLock { $0 } }
}
