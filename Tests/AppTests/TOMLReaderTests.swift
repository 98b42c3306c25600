import Foundation
import Mux
import Testing

@testable import App

@Suite struct TOMLReaderTests {
    private func values(_ text: String) throws -> [String: TOMLValue] {
        Dictionary(uniqueKeysWithValues: try TOMLReader.entries(in: text).map { ($0.key, $0.value) })
    }

    private func refusal(_ text: String) -> TOMLError? {
        do {
            _ = try TOMLReader.entries(in: text)
            return nil
        } catch {
            return error
        }
    }

    @Test func readsEveryKindOfValueAnOptionCanTake() throws {
        let text = """
            # a comment
            bare-key_1 = "basic \\"quoted\\" \\\\ \\t\\u00e9\\U0001F600" # after a value
            "quoted key" = 'C:\\no\\escapes'
              'literal key'	=	'tab-separated'
            multiline = \"\"\"
            first
            second \\
                  continued ""\"\"\"
            raw = '''
            one ''\\n'''
            decimal = -1_000
            positive = +7
            zero = 0
            hex = 0xDEAD_beef
            octal = 0o755
            binary = 0b1101
            fraction = 3.25
            exponent = 5e+2
            both = -6.02_2E-1_0
            infinity = -inf
            yes = true
            no = false
            array = [
              "a",   # first
              2, 3.5, [true],
            ]
            empty = []
            """
        let entries = try TOMLReader.entries(in: text)
        #expect(entries.map(\.line) == [2, 3, 4, 5, 9] + Array(11...23) + [27])
        let read = try values(text)
        #expect(read["bare-key_1"] == .string("basic \"quoted\" \\ \té😀"))
        #expect(read["quoted key"] == .string("C:\\no\\escapes"))
        #expect(read["literal key"] == .string("tab-separated"))
        #expect(read["multiline"] == .string("first\nsecond continued \"\""))
        #expect(read["raw"] == .string("one ''\\n"))
        #expect(read["decimal"] == .integer(-1000))
        #expect(read["positive"] == .integer(7))
        #expect(read["zero"] == .integer(0))
        #expect(read["hex"] == .integer(0xDEAD_BEEF))
        #expect(read["octal"] == .integer(0o755))
        #expect(read["binary"] == .integer(13))
        #expect(read["fraction"] == .float(3.25))
        #expect(read["exponent"] == .float(500))
        #expect(read["both"] == .float(-6.022e-10))
        #expect(read["infinity"] == .float(-.infinity))
        #expect(read["yes"] == .boolean(true))
        #expect(read["no"] == .boolean(false))
        #expect(read["array"] == .array([.string("a"), .integer(2), .float(3.5), .array([.boolean(true)])]))
        #expect(read["empty"] == .array([]))
    }

    @Test func readsWindowsLineEndsAndAByteOrderMark() throws {
        let entries = try TOMLReader.entries(in: "\u{FEFF}a = \"x\"\r\n\r\nb = [\r\n  1,\r\n]\r\nc = '''\r\ny'''\r\n")
        #expect(entries.map(\.key) == ["a", "b", "c"])
        #expect(entries.map(\.line) == [1, 3, 6])
        #expect(entries.map(\.value) == [.string("x"), .array([.integer(1)]), .string("y")])
    }

    @Test func nanIsAFloat() throws {
        guard case .float(let value) = try values("n = nan")["n"] else {
            Issue.record("nan is not a float")
            return
        }
        #expect(value.isNaN)
    }

    @Test(
        arguments: [
            ("[section]\nkey = 1", 1, 1, "tables are not used: every option is a key at the top of the file"),
            ("[[servers]]", 1, 1, "tables are not used: every option is a key at the top of the file"),
            ("a.b = 1", 1, 2, "dotted keys are not used: every option is a key at the top of the file"),
            ("a = { b = 1 }", 1, 5, "inline tables are not used: every option is a key at the top of the file"),
            ("when = 1979-05-27", 1, 8, "dates and times are not used: no option takes one"),
            ("at = 07:32:00", 1, 6, "dates and times are not used: no option takes one"),
            ("a = 1\n  a = 2", 2, 3, "key 'a' is set twice (first on line 1)"),
            ("a = \"b", 1, 7, "the string is not closed with '\"' on its line"),
            ("a = 'b\n'", 1, 7, "the string is not closed with \"'\" on its line"),
            ("a = \"\"\"\nb\"\"", 2, 4, "the string opened on line 1 is not closed with three quotes"),
            ("a = \"\"\"b\"\"\"\"\"\"", 1, 15, "too many quotes at the end of the string"),
            ("a = \"\\x41\"", 1, 6, "unknown escape '\\x' (write '\\\\' for a backslash)"),
            ("a = \"\\u12\"", 1, 6, "\\u takes exactly 4 hexadecimal digits"),
            ("a = \"\\U0000+041\"", 1, 6, "\\U takes exactly 8 hexadecimal digits"),
            ("a = \"\\uD800\"", 1, 6, "\\u names no Unicode character"),
            ("a = \"\"\"x\\  y\"\"\"", 1, 12, "a '\\' followed by blanks must end its line"),
            ("a = \"b\u{7}\"", 1, 7, "control character U+7 (write it as an escape in a \"…\" string)"),
            ("# bell \u{7}", 1, 8, "control character U+7 (write it as an escape in a \"…\" string)"),
            ("a = 1\rb = 2", 1, 6, "a carriage return must be followed by a newline"),
            ("a = 012", 1, 5, "'012' is not a TOML number"),
            ("a = 1__0", 1, 5, "'1__0' is not a TOML number"),
            ("a = _1", 1, 5, "expected a value: a string in quotes, a number, true, false or an array"),
            ("a = 1_", 1, 5, "'1_' is not a TOML number"),
            ("a = 1.", 1, 5, "'1.' is not a TOML number"),
            ("a = .5", 1, 5, "expected a value: a string in quotes, a number, true, false or an array"),
            ("a = 1e", 1, 5, "'1e' is not a TOML number"),
            ("a = +0x1", 1, 5, "'+0x1' is not a TOML number"),
            ("a = 0xG", 1, 5, "'0xG' is not a TOML number"),
            ("a = 9223372036854775808", 1, 5, "'9223372036854775808' is not a TOML number"),
            ("a = infinity", 1, 5, "expected a value: a string in quotes, a number, true, false or an array"),
            ("a = yes", 1, 5, "expected a value: a string in quotes, a number, true, false or an array"),
            ("a =", 1, 4, "expected a value: a string in quotes, a number, true, false or an array"),
            ("a", 1, 2, "expected '=' after the key"),
            ("= 1", 1, 1, "expected a key (letters, digits, '-' and '_', or quoted)"),
            ("a = 1 2", 1, 7, "expected the end of the line after the value"),
            ("a = truely", 1, 9, "expected the end of the line after the value"),
            ("a = [1 2]", 1, 8, "expected ',' or ']' after a value in the array"),
            ("a = [1,\n2", 2, 2, "the array opened on line 1 is not closed with ']'"),
            ("a = [,]", 1, 6, "expected a value: a string in quotes, a number, true, false or an array"),
            ("k = é", 1, 5, "expected a value: a string in quotes, a number, true, false or an array"),
            ("é = 1", 1, 1, "expected a key (letters, digits, '-' and '_', or quoted)"),
            ("'ü' = \"ü\" x", 1, 11, "expected the end of the line after the value"),
        ])
    func refusesWhatIsNotTOMLOrNoOptionTakesWithItsPlace(text: String, line: Int, column: Int, message: String) {
        #expect(refusal(text) == TOMLError(line: line, column: column, message: message))
    }

    @Test func refusesArraysNestedDeeperThanTheLimit() {
        let depth = TOMLReader.maximumDepth
        #expect(refusal("a = " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth)) == nil)
        #expect(
            refusal("a = " + String(repeating: "[", count: 100_000))
                == TOMLError(line: 1, column: 5 + depth, message: "arrays nested more than \(depth) deep"))
    }

    /// Every prefix of a file, and the file with bytes changed at random (seeded, so every run tries the same),
    /// is read or refused with a position inside the text: never a crash, never a position past its end.
    @Test func everyTruncatedOrAlteredFileIsReadOrRefusedWithAPlaceInIt() {
        let valid = Array(
            "a = \"x\\u00e9\" # c\r\nb = [1, 0x1F, 2.5e3, '''\nq''', \"\"\"\\\n  r\"\"\"]\n\"c\" = -inf\nd = true\n"
                .utf8)
        let alphabet = Array("\"'\\[]{},.=#_+-:eE0x1 \t\n\rtfinu".utf8) + [0xC3, 0xA9, 0x07]
        var generator = SeededGenerator(seed: 17)
        var inputs = (0...valid.count).map { Array(valid.prefix($0)) }
        for _ in 0..<5_000 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = alphabet.randomElement(using: &generator)!
            }
            inputs.append(bytes)
        }
        for bytes in inputs {
            let text = String(decoding: bytes, as: UTF8.self)
            guard let error = refusal(text) else { continue }
            let lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            #expect(error.line >= 1 && error.line <= lines.count, "\(text.debugDescription): \(error)")
            #expect(error.column >= 1, "\(text.debugDescription): \(error)")
        }
    }

    /// Python's tomllib (TOML 1.0, Python 3.11) reads the same files: where it refuses one, so does the reader;
    /// where it reads one of top-level strings, 64-bit integers, floats, booleans and arrays, the reader reads the
    /// same values; where the file holds a table, a date or a larger integer, the reader refuses it.
    @Test func agreesWithPythonsTomllibOnAlteredFiles() throws {
        let seeds = [
            #"a = "x\u00e9\"" # c"# + "\nb = [1, 0x1F, 2.5e3, '''\nq''', \"\"\"\\\n  r\"\"\"]\n\"c\" = -inf\n",
            "d = true\ne = 'lit'\nf = -0.0_1e+1_0\ng = [[1, 2], ['a']]\nh = 0o17\ni = +nan\n",
            "[t]\nk = 1979-05-27\nl = { m = 1 }\nn.o = 2\np = 0b11\n",
            "q = \"\"\"\nline\r\n\"\"end\"\"\"\"\nr = 9_223_372_036_854_775_807\n",
        ].map { Array($0.utf8) }
        let alphabet = Array("\"'\\[]{},.=#_+-:eE0x17 \t\n\rtfinub".utf8) + [0x07, 0x7F]
        var generator = SeededGenerator(seed: 29)
        var texts = seeds.map { String(decoding: $0, as: UTF8.self) }
        for index in 0..<3_000 {
            var bytes = seeds[index % seeds.count]
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let position = Int.random(in: 0..<bytes.count, using: &generator)
                let byte = alphabet.randomElement(using: &generator)!
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[position] = byte
                case 1: bytes.insert(byte, at: position)
                default: bytes.remove(at: position)
                }
            }
            texts.append(String(decoding: bytes, as: UTF8.self))
        }
        let verdicts = try tomllibVerdicts(texts)
        try #require(verdicts.count == texts.count)
        var agreed = (read: 0, refused: 0)
        for (text, verdict) in zip(texts, verdicts) {
            let ours = try? TOMLReader.entries(in: text)
            switch (verdict, ours) {
            case (nil, nil): agreed.refused += 1
            case (nil, let entries?):
                Issue.record("tomllib refuses, the reader reads \(entries): \(text.debugDescription)")
            case (let python?, let entries?):
                let values = Dictionary(uniqueKeysWithValues: entries.map { ($0.key, Optional($0.value)) })
                #expect(
                    python.keys.sorted() == values.keys.sorted()
                        && python.allSatisfy { key, value in Self.same(value, values[key] ?? nil) },
                    "tomllib reads \(python), the reader \(values): \(text.debugDescription)")
                agreed.read += 1
            case (let python?, nil):
                #expect(python.values.contains(nil), "the reader refuses what tomllib reads: \(text.debugDescription)")
                agreed.refused += 1
            }
        }
        #expect(agreed.read > 300 && agreed.refused > 300, "both kinds were tried: \(agreed)")
    }

    /// For each text: nil where tomllib refuses it, else its top-level values, each nil where the reader takes no
    /// such value (a table, a date, an integer past 64 bits).
    private func tomllibVerdicts(_ texts: [String]) throws -> [[String: TOMLValue?]?] {
        let script = """
            import json, sys, tomllib
            def value(v):
                if isinstance(v, bool): return ["boolean", v]
                if isinstance(v, int): return ["integer", v] if -2**63 <= v < 2**63 else None
                if isinstance(v, float): return ["float", repr(v)]
                if isinstance(v, str): return ["string", v]
                if isinstance(v, list):
                    items = [value(x) for x in v]
                    return None if None in items else ["array", items]
                return None
            verdicts = []
            for line in sys.stdin:
                try:
                    verdicts.append({k: value(v) for k, v in tomllib.loads(json.loads(line)).items()})
                except tomllib.TOMLDecodeError:
                    verdicts.append(None)
            print(json.dumps(verdicts))
            """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script]
        let input = Pipe()
        let output = Pipe()
        python.standardInput = input
        python.standardOutput = output
        try python.run()
        let lines = try texts.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        // Written from another thread: python answers only at the end, and the texts outgrow a pipe's buffer.
        let writer = Thread {
            input.fileHandleForWriting.write(Data((lines.joined(separator: "\n") + "\n").utf8))
            try? input.fileHandleForWriting.close()
        }
        writer.start()
        let json = output.fileHandleForReading.readDataToEndOfFile()
        python.waitUntilExit()
        try #require(python.terminationStatus == 0, "python3 (3.11 or later, for tomllib) must run")
        let decoded = try #require(try JSONSerialization.jsonObject(with: json) as? [Any])
        return decoded.map { verdict in
            (verdict as? [String: Any]).map { $0.mapValues(Self.tomlValue) }
        }
    }

    /// Equal values, where a NaN is the same as a NaN.
    private static func same(_ one: TOMLValue?, _ other: TOMLValue?) -> Bool {
        switch (one, other) {
        case (.float(let a), .float(let b)) where a.isNaN && b.isNaN: true
        case (.array(let a), .array(let b)): a.count == b.count && zip(a, b).allSatisfy { same($0, $1) }
        default: one == other
        }
    }

    private static func tomlValue(_ python: Any) -> TOMLValue? {
        guard let pair = python as? [Any], pair.count == 2, let kind = pair[0] as? String else { return nil }
        switch (kind, pair[1]) {
        case ("boolean", let value as Bool): return .boolean(value)
        case ("integer", let value as NSNumber): return .integer(value.int64Value)
        case ("float", let value as String): return Double(value).map(TOMLValue.float)
        case ("string", let value as String): return .string(value)
        case ("array", let values as [Any]):
            let items = values.map(tomlValue)
            return items.contains(nil) ? nil : .array(items.compactMap { $0 })
        default: return nil
        }
    }
}
