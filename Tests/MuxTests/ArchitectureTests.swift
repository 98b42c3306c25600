import Foundation
import Testing

/// The layout docs/ARCHITECTURE.md describes, checked against the sources: Mux's folders depend one way, and no
/// source file grows past what one sitting reads.
@Suite struct ArchitectureTests {
    /// Mux's folders, each allowed to use only the folders before it.
    private static let layers = ["Net", "Wire", "Engine", "Camouflage", "Forwarding", "Flows", "Agents"]
    private static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Sources").standardized

    /// Every Swift file under `Sources`, with its path relative to it.
    private func swiftFiles(under folder: URL) throws -> [(path: String, text: String)] {
        let paths = FileManager.default.enumerator(atPath: folder.path)?.compactMap { $0 as? String } ?? []
        return try paths.filter { $0.hasSuffix(".swift") }.sorted().map { path in
            (path, try String(contentsOf: folder.appendingPathComponent(path), encoding: .utf8))
        }
    }

    /// The names of the top-level types a source file declares (nested ones are named through these).
    private func declaredTypes(in text: String) -> [String] {
        let declaration =
            /(?m)^(?:(?:package|public|private|fileprivate|internal|final|indirect)\s+)*(?:class|struct|enum|protocol|typealias|actor)\s+(\w+)/
        return text.matches(of: declaration).map { String($0.1) }
    }

    @Test func eachMuxFolderUsesOnlyTheFoldersBeforeIt() throws {
        let mux = Self.sources.appendingPathComponent("Mux")
        let files = try Self.layers.map { layer in
            (layer, try swiftFiles(under: mux.appendingPathComponent(layer)))
        }
        #expect(files.allSatisfy { !$0.1.isEmpty }, "a layer folder is missing")
        var home: [String: Int] = [:]
        for (index, (_, layerFiles)) in files.enumerated() {
            for file in layerFiles {
                for name in declaredTypes(in: file.text) { home[name] = index }
            }
        }
        var violations: [String] = []
        for (index, (layer, layerFiles)) in files.enumerated() {
            for file in layerFiles {
                let code = file.text.split(separator: "\n").map {
                    $0.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false)[0]
                }
                .joined(separator: "\n")
                for (name, owner) in home where owner > index {
                    if code.contains(try Regex("\\b\(name)\\b")) {
                        violations.append("\(layer)/\(file.path) uses \(name) from \(Self.layers[owner])")
                    }
                }
            }
        }
        #expect(violations == [])
    }

    @Test func noSourceFileIsLongerThan350Lines() throws {
        let long = try swiftFiles(under: Self.sources).compactMap { file in
            let lines = file.text.split(separator: "\n", omittingEmptySubsequences: false).count - 1
            return lines > 350 ? "\(file.path): \(lines) lines" : nil
        }
        #expect(long == [])
    }
}
