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

/// Names the calling thread for `top -H`, `ps -L` and debuggers; Linux keeps the first 15 bytes.
func nameCurrentThread(_ name: String) {
    guard let setName = pthreadSetName else { return }
    _ = String(name.utf8.prefix(15))!.withCString { setName(pthread_self(), $0) }
}

/// glibc's pthread_setname_np, looked up at run time because Swift's Glibc module does not declare it (it
/// needs _GNU_SOURCE). It names the calling thread with one prctl(2); writing /proc/thread-self/comm instead
/// costs a path lookup that made thread start-up, once per stream, 40 % slower.
private let pthreadSetName: (@convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32)? = {
    guard let symbol = dlsym(nil, "pthread_setname_np") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32).self)
}()

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

/// A one-shot event that threads can wait for with a timeout (Foundation's `Thread` has no join). Its timed
/// waits run on the monotonic clock (a `DispatchSemaphore` waits on the wall clock on Linux).
/// `@unchecked Sendable`: `isDone` is guarded by `condition`.
package final class Completion: @unchecked Sendable {
    package init() {}

    private let condition = MonotonicCondition()
    private var isDone = false

    /// Marks the event as happened and wakes every waiter, now and later. Idempotent.
    package func complete() {
        condition.lock()
        defer { condition.unlock() }
        isDone = true
        condition.broadcast()
    }

    /// Waits until `complete()` was called, however long that takes: for work that bounds its own time.
    package func wait() {
        condition.lock()
        defer { condition.unlock() }
        while !isDone { condition.wait() }
    }

    /// Waits until `complete()` was called or `seconds` pass; returns whether it was called.
    @discardableResult
    package func wait(seconds: Double) -> Bool {
        wait(until: .now + .seconds(max(0, seconds)))
    }

    /// Waits until `complete()` was called or `deadline` passes; returns whether it was called.
    @discardableResult
    package func wait(until deadline: ContinuousClock.Instant) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !isDone {
            if !condition.wait(until: deadline) { return isDone }
        }
        return true
    }

    /// Whether `complete()` was called.
    package var hasCompleted: Bool {
        condition.lock()
        defer { condition.unlock() }
        return isDone
    }
}

/// Sleeps the calling thread for `seconds` (nanosleep on the monotonic clock's time scale, resumed after a
/// signal), without Foundation's `Thread.sleep`.
package func sleep(seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}
