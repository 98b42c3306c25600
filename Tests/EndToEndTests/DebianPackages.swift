import Foundation

@testable import Mux

/// The real components tests run come from Debian's packages. When one is missing and the tests run as root (as
/// `.ci/run` and the README's `swift test` on a fresh machine do), it is installed with apt-get; otherwise the
/// test fails with what to run.
enum DebianPackages {
    /// Makes sure `path` (a program, or a library's file) exists, installing `package` for it if needed.
    static func ensureInstalled(_ package: String, providing path: String) throws {
        guard !FileManager.default.fileExists(atPath: path) else { return }
        guard getuid() == 0 else {
            throw MissingComponent("\(path) is missing and the tests are not root: apt-get install \(package)")
        }
        for arguments in [
            ["install", "-y", "--no-install-recommends", package], ["update"],
            ["install", "-y", "--no-install-recommends", package],
        ] {
            if FileManager.default.fileExists(atPath: path) { return }
            let apt = Process()
            apt.executableURL = URL(fileURLWithPath: "/usr/bin/apt-get")
            apt.arguments = arguments
            apt.environment = ["DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
            apt.standardOutput = FileHandle.nullDevice
            apt.standardError = FileHandle.nullDevice
            try apt.run()
            apt.waitUntilExit()
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw MissingComponent("apt-get install \(package) did not install \(path)")
        }
    }
}

/// A real component a test needs could not be had.
struct MissingComponent: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `path` with `arguments` (and `environment` added to the tests' own) to its end and returns its exit
/// status and standard output (standard error is kept apart, in `errors`); for the command-line tools the tests
/// drive (curl, openssl, tshark).
@discardableResult
func run(_ path: String, _ arguments: [String], input: Data? = nil, environment: [String: String] = [:]) throws -> (
    status: Int32, output: Data, errors: String
) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let output = Pipe()
    let errors = Pipe()
    let stdin = Pipe()
    process.standardOutput = output
    process.standardError = errors
    process.standardInput = input == nil ? FileHandle.nullDevice : stdin
    try process.run()
    if let input {
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
    }
    // Both pipes are read to their end before the wait, so a chatty tool never blocks on a full pipe.
    let errorText = Locked(Data())
    let errorReader = Completion()
    try startThread(named: "stderr") {
        errorText.withLock { $0 = errors.fileHandleForReading.readDataToEndOfFile() }
        errorReader.complete()
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    errorReader.wait()
    process.waitUntilExit()
    return (process.terminationStatus, data, String(decoding: errorText.withLock { $0 }, as: UTF8.self))
}

/// Waits up to 10 s for `process`, a server just started, to accept connections at `endpoint`; throws naming
/// `what` with the end of `log` (the file it writes to) if it exits or does not listen by then.
func awaitListening(_ process: Process, at endpoint: Endpoint, what: String, log: String) throws {
    try awaitListening(isRunning: { process.isRunning }, at: endpoint, what: what, log: log)
}

/// `awaitListening` for a server whose liveness `isRunning` tells.
func awaitListening(isRunning: () -> Bool, at endpoint: Endpoint, what: String, log: String) throws {
    guard eventually(within: 10, { !isRunning() || (try? connect(to: endpoint))?.close() != nil }), isRunning()
    else {
        let said = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        throw MissingComponent("\(what) did not listen on \(endpoint): \(said.suffix(2000))")
    }
}
