import Foundation
import PackagePlugin

/// Writes `BuildCommit.swift`, which holds the git commit the binary is built from, so that `--version` names it.
/// A prebuild command runs before every build; it rewrites the file only when the commit changed, so builds stay
/// incremental. Outside a git checkout (a source tarball) the commit is "unknown".
@main
struct BuildInfo: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "BuildCommit.swift")
        let script = """
            commit=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
            text="/// The git commit this binary was built from (written by the BuildInfo plugin).
            let buildCommit = \\"$commit\\""
            [ "$(cat "$2" 2>/dev/null)" = "$text" ] || printf '%s\\n' "$text" > "$2"
            """
        return [
            .prebuildCommand(
                displayName: "Stamping the git commit into BuildCommit.swift",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: ["-c", script, "sh", context.package.directoryURL.path, output.path],
                outputFilesDirectory: context.pluginWorkDirectoryURL)
        ]
    }
}
