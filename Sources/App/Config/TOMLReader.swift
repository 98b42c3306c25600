/// Reads the TOML files an agent takes as `--config`. Every key of such a file is an option, so a file is a list of
/// top-level `key = value` lines; the reader takes TOML 1.0's comments, bare and quoted keys, the four kinds of
/// string with their escapes, integers (decimal, `0x`, `0o`, `0b`, with `_`), floats (`inf` and `nan` too),
/// booleans and arrays, over LF or CRLF lines. It refuses, with the line and column: a table header, a dotted key or
/// an inline table (no option is a table), a date or time (no option takes one), a key set twice, and anything that
/// is not TOML.
///
/// Why not a TOML library: the one used before (TOMLKit, over C++'s toml++) brought C++ stream start-up and
/// Foundation's calendar code that no option needs: 0.45 MB of the binary and 0.6 MB of an idle agent's memory,
/// which kept the agent over its 12 MiB budget (issue 17).
struct TOMLReader {
    /// One `key = value` of a file.
    struct Entry: Equatable {
        let key: String
        let value: TOMLValue
        /// The key's line, from 1.
        let line: Int
    }

    /// The file's entries in its order, or the first thing in it that cannot be read.
    static func entries(in text: String) throws(TOMLError) -> [Entry] {
        var bytes = Array(text.utf8)
        // A byte order mark, which some editors write first, is not part of the text.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        var reader = TOMLReader(bytes: bytes)
        return try reader.readFile()
    }

    /// Arrays hold arrays at most this deep, so that a broken file cannot exhaust the stack.
    static let maximumDepth = 32

    // The cursor (visible to TOMLReader+Strings.swift; only `entries(in:)` makes a reader).
    /// The file's UTF-8.
    let bytes: [UInt8]
    /// The next byte to read.
    var offset = 0
    /// The line of `offset`, from 1, and the offset that line starts at.
    var line = 1
    var lineStart = 0

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    // MARK: - The file and its lines

    private mutating func readFile() throws(TOMLError) -> [Entry] {
        var entries: [Entry] = []
        var lineOfKey: [String: Int] = [:]
        while true {
            skipBlanks()
            guard let byte = peek() else { return entries }
            switch byte {
            case UInt8(ascii: "#"): try skipComment()
            case _ where Self.isLineEnd(byte): try skipNewline()
            case UInt8(ascii: "["):
                throw error("tables are not used: every option is a key at the top of the file")
            default:
                let keyLine = line
                let keyStart = offset
                let key = try readKey()
                if let first = lineOfKey[key] {
                    throw error("key '\(key)' is set twice (first on line \(first))", at: keyStart)
                }
                lineOfKey[key] = keyLine
                entries.append(Entry(key: key, value: try readValue(depth: 0), line: keyLine))
                try endLine()
            }
        }
    }

    /// After a value: blanks, an optional comment, then the end of the line or of the file.
    private mutating func endLine() throws(TOMLError) {
        skipBlanks()
        if peek() == UInt8(ascii: "#") { try skipComment() }
        guard peek() != nil else { return }
        guard atLineEnd else { throw error("expected the end of the line after the value") }
        try skipNewline()
    }

    private mutating func readKey() throws(TOMLError) -> String {
        let key: String
        switch peek() {
        case UInt8(ascii: "\""): key = try readBasicString()
        case UInt8(ascii: "'"): key = try readLiteralString()
        default:
            let start = offset
            while let byte = peek(), Self.isBareKeyByte(byte) { offset += 1 }
            guard offset > start else { throw error("expected a key (letters, digits, '-' and '_', or quoted)") }
            key = String(decoding: bytes[start..<offset], as: UTF8.self)
        }
        skipBlanks()
        if peek() == UInt8(ascii: ".") {
            throw error("dotted keys are not used: every option is a key at the top of the file")
        }
        guard peek() == UInt8(ascii: "=") else { throw error("expected '=' after the key") }
        offset += 1
        skipBlanks()
        return key
    }

    // MARK: - Values

    private mutating func readValue(depth: Int) throws(TOMLError) -> TOMLValue {
        switch peek() {
        case UInt8(ascii: "\""):
            return .string(
                try startsWith("\"\"\"") ? readMultilineString(quote: UInt8(ascii: "\"")) : readBasicString())
        case UInt8(ascii: "'"):
            return .string(try startsWith("'''") ? readMultilineString(quote: UInt8(ascii: "'")) : readLiteralString())
        case UInt8(ascii: "["): return .array(try readArray(depth: depth + 1))
        case UInt8(ascii: "{"): throw error("inline tables are not used: every option is a key at the top of the file")
        case UInt8(ascii: "t") where startsWith("true"):
            offset += 4
            return .boolean(true)
        case UInt8(ascii: "f") where startsWith("false"):
            offset += 5
            return .boolean(false)
        case let byte? where Self.startsNumber(byte) || byte == UInt8(ascii: "i") || byte == UInt8(ascii: "n"):
            return try readNumber()
        default:
            throw error("expected a value: a string in quotes, a number, true, false or an array")
        }
    }

    private mutating func readArray(depth: Int) throws(TOMLError) -> [TOMLValue] {
        guard depth <= Self.maximumDepth else { throw error("arrays nested more than \(Self.maximumDepth) deep") }
        let openLine = line
        offset += 1  // [
        var values: [TOMLValue] = []
        while true {
            try skipBlanksNewlinesAndComments()
            guard let byte = peek() else {
                throw error("the array opened on line \(openLine) is not closed with ']'")
            }
            if byte == UInt8(ascii: "]") {
                offset += 1
                return values
            }
            values.append(try readValue(depth: depth))
            try skipBlanksNewlinesAndComments()
            switch peek() {
            case UInt8(ascii: ","): offset += 1
            case UInt8(ascii: "]"): continue
            case nil: throw error("the array opened on line \(openLine) is not closed with ']'")
            default: throw error("expected ',' or ']' after a value in the array")
            }
        }
    }

    // MARK: - Numbers

    /// An integer or a float, up to the next blank, `,`, `]`, `#` or line end.
    private mutating func readNumber() throws(TOMLError) -> TOMLValue {
        let start = offset
        while let byte = peek(), !Self.endsToken(byte) { offset += 1 }
        let token = String(decoding: bytes[start..<offset], as: UTF8.self)
        if Self.isDateOrTime(bytes[start..<offset]) {
            offset = start
            throw error("dates and times are not used: no option takes one")
        }
        if let value = TOMLNumber.value(of: token) { return value }
        offset = start
        guard Self.startsNumber(bytes[start]) else {
            throw error("expected a value: a string in quotes, a number, true, false or an array")
        }
        throw error("'\(token)' is not a TOML number")
    }

    /// `1979-05-27…` or `07:32…`: the start of a TOML date or time.
    private static func isDateOrTime(_ token: ArraySlice<UInt8>) -> Bool {
        let head = Array(token.prefix(5))
        if head.count == 5, head[0..<4].allSatisfy(isDigit), head[4] == UInt8(ascii: "-") { return true }
        return head.count >= 3 && head[0..<2].allSatisfy(isDigit) && head[2] == UInt8(ascii: ":")
    }

    // MARK: - Blanks, comments, newlines

    mutating func skipBlanks() {
        while let byte = peek(), Self.isBlank(byte) { offset += 1 }
    }

    private mutating func skipBlanksNewlinesAndComments() throws(TOMLError) {
        while let byte = peek() {
            if Self.isBlank(byte) {
                offset += 1
            } else if Self.isLineEnd(byte) {
                try skipNewline()
            } else if byte == UInt8(ascii: "#") {
                try skipComment()
            } else {
                return
            }
        }
    }

    /// `#` to the end of the line (not the newline itself).
    private mutating func skipComment() throws(TOMLError) {
        while let byte = peek(), !Self.isLineEnd(byte) {
            try checkNotControl(byte)
            offset += 1
        }
    }

    /// LF or CRLF; a CR alone is not a newline in TOML.
    mutating func skipNewline() throws(TOMLError) {
        if peek() == UInt8(ascii: "\r") {
            guard peek(1) == UInt8(ascii: "\n") else { throw error("a carriage return must be followed by a newline") }
            offset += 1
        }
        offset += 1
        line += 1
        lineStart = offset
    }

    /// Control characters other than tab are not allowed in strings or comments.
    func checkNotControl(_ byte: UInt8) throws(TOMLError) {
        guard byte >= 0x20 && byte != 0x7F || byte == 0x09 else {
            throw error(
                "control character U+\(String(byte, radix: 16, uppercase: true)) (write it as an escape in a \"…\" string)"
            )
        }
    }

    // MARK: - Bytes

    func peek(_ ahead: Int = 0) -> UInt8? {
        offset + ahead < bytes.count ? bytes[offset + ahead] : nil
    }

    /// Whether the next byte starts a newline (LF, or the CR of CRLF).
    var atLineEnd: Bool { peek().map(Self.isLineEnd) ?? false }

    func startsWith(_ text: String) -> Bool {
        bytes[offset...].starts(with: text.utf8)
    }

    /// An error at the current position; the column counts characters, not bytes.
    func error(_ message: String) -> TOMLError {
        error(message, at: offset)
    }

    /// An error at `position`, a byte of the current line.
    func error(_ message: String, at position: Int) -> TOMLError {
        let column = bytes[lineStart..<min(position, bytes.count)].count { $0 & 0xC0 != 0x80 } + 1
        return TOMLError(line: line, column: column, message: message)
    }

    static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
    static func isLineEnd(_ byte: UInt8) -> Bool { byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") }
    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// A digit or a sign: what starts a number other than `inf` and `nan`.
    private static func startsNumber(_ byte: UInt8) -> Bool {
        isDigit(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
    }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
    }

    private static func isBareKeyByte(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: "_")
    }

    private static func endsToken(_ byte: UInt8) -> Bool {
        isBlank(byte) || isLineEnd(byte) || byte == UInt8(ascii: ",") || byte == UInt8(ascii: "]")
            || byte == UInt8(ascii: "#")
    }
}

/// Why a TOML file cannot be read, and where: line and column from 1.
struct TOMLError: Error, Equatable {
    let line: Int
    let column: Int
    let message: String
}
