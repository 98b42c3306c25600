import CSodium

/// libsodium's one-time initialisation.
public enum Sodium {
    /// Swift initialises a static `let` once, thread-safely; `sodium_init` returns 1 when already initialised.
    private static let isReady = sodium_init() >= 0

    /// Guarantees libsodium is initialised before any other call into it. Stops the process if it cannot be.
    static func ensureReady() {
        precondition(isReady, "libsodium failed to initialise")
    }

    /// The version of the libsodium library loaded at run time, e.g. `1.0.18`.
    public static var version: String { String(cString: sodium_version_string()) }
}
