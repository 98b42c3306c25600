import Foundation
import FuzzChecks
import Testing

/// Replays every committed fuzz input (seeds, and every crash the fuzzers ever found) through the same checks the
/// fuzzers run, so a fixed crash stays fixed. Add a crashing input to `Fuzz/Corpus/<target>/` to keep it here.
@Suite struct FuzzRegressionTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Corpus")

    @Test(arguments: FuzzChecks.targets.keys.sorted())
    func committedInputsPassTheirFuzzCheck(target: String) throws {
        let folder = Self.corpus.appendingPathComponent(target)
        let files = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
        #expect(!files.isEmpty, "no corpus in \(folder.path)")
        let check = try #require(FuzzChecks.targets[target])
        for file in files { check(Array(try Data(contentsOf: file))) }
    }
}
