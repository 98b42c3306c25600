import ArgumentParser

/// A fatal problem to report as one line on standard error, followed by exit status 1.
struct ExitMessage: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Runs `body`; any error becomes one `tcptunnel: error: …` line on standard error and exit status 1.
/// Usage errors (`ValidationError`) and clean exits pass through to ArgumentParser, which exits with 64 or 0.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        StandardStreams.error("tcptunnel: error: \(error)\n")
        throw ExitCode.failure
    }
}
