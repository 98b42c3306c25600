import ArgumentParser
import Testing

@testable import App

/// What the shipped completion scripts offer after an option: the values it takes, or file names.
@Suite struct ShellCompletionTests {
    /// The bash script's completion case for `option`, up to its `return`.
    private func bashCase(_ option: String) -> String {
        let script = TCPTunnel.completionScript(for: .bash)
        guard let start = script.range(of: "    '\(option)')\n") else { return "" }
        return String(script[start.upperBound...].prefix { $0 != ";" })
    }

    @Test func bashOffersTheLogLevelsAndFileNamesForFileOptions() {
        #expect(bashCase("--log-level").contains("'trace'$'\\n''debug'$'\\n''info'"))
        #expect(bashCase("--log-format").contains("'text'$'\\n''json'"))
        #expect(bashCase("--config").contains("-fX '!*.@(toml)'"))
        for option in ["--key-file", "--socks-user-file", "--out"] {
            #expect(bashCase(option).contains("__tcptunnel_add_completions -f"), "\(option)")
        }
    }
}
