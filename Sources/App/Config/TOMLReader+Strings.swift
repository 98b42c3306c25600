/// The four kinds of TOML string: `"…"` and `"""…"""` with escapes, `'…'` and `'''…'''` as written.
extension TOMLReader {
    /// `"…"`, with escapes.
    mutating func readBasicString() throws(TOMLError) -> String {
        offset += 1
        var content: [UInt8] = []
        while true {
            guard let byte = peek(), !Self.isLineEnd(byte) else {
                throw error("the string is not closed with '\"' on its line")
            }
            switch byte {
            case UInt8(ascii: "\""):
                offset += 1
                return String(decoding: content, as: UTF8.self)
            case UInt8(ascii: "\\"): try readEscape(into: &content)
            default:
                try checkNotControl(byte)
                content.append(byte)
                offset += 1
            }
        }
    }

    /// `'…'`, as written.
    mutating func readLiteralString() throws(TOMLError) -> String {
        offset += 1
        let start = offset
        while true {
            guard let byte = peek(), !Self.isLineEnd(byte) else {
                throw error("the string is not closed with \"'\" on its line")
            }
            if byte == UInt8(ascii: "'") {
                let text = String(decoding: bytes[start..<offset], as: UTF8.self)
                offset += 1
                return text
            }
            try checkNotControl(byte)
            offset += 1
        }
    }

    /// `"""…"""` (with escapes) or `'''…'''` (as written): a newline right after the opening quotes is not part of
    /// the string, and one or two quotes may end the string just before the closing three.
    mutating func readMultilineString(quote: UInt8) throws(TOMLError) -> String {
        let openLine = line
        offset += 3
        if atLineEnd { try skipNewline() }
        var content: [UInt8] = []
        while true {
            guard let byte = peek() else {
                throw error("the string opened on line \(openLine) is not closed with three quotes")
            }
            switch byte {
            case quote:
                var run = 0
                while peek() == quote {
                    run += 1
                    offset += 1
                }
                guard run < 3 else {
                    guard run <= 5 else { throw error("too many quotes at the end of the string") }
                    content += repeatElement(quote, count: run - 3)
                    return String(decoding: content, as: UTF8.self)
                }
                content += repeatElement(quote, count: run)
            case UInt8(ascii: "\\") where quote == UInt8(ascii: "\""):
                if let next = peek(1), Self.isBlank(next) || Self.isLineEnd(next) {
                    try skipLineEndingBackslash()
                } else {
                    try readEscape(into: &content)
                }
            case _ where Self.isLineEnd(byte):
                try skipNewline()
                content.append(UInt8(ascii: "\n"))
            default:
                try checkNotControl(byte)
                content.append(byte)
                offset += 1
            }
        }
    }

    /// A `\` that ends a line of a `"""` string: it, the rest of the line's blanks, and the blanks and newlines that
    /// follow are not part of the string.
    private mutating func skipLineEndingBackslash() throws(TOMLError) {
        offset += 1
        skipBlanks()
        guard atLineEnd else { throw error("a '\\' followed by blanks must end its line") }
        while let byte = peek() {
            if Self.isBlank(byte) {
                offset += 1
            } else if Self.isLineEnd(byte) {
                try skipNewline()
            } else {
                return
            }
        }
    }

    /// `\b \t \n \f \r \" \\`, and `\u` or `\U` with four or eight hexadecimal digits: appended as UTF-8.
    private mutating func readEscape(into content: inout [UInt8]) throws(TOMLError) {
        let start = offset
        offset += 1
        guard let letter = peek() else { throw error("the string ends inside an escape", at: start) }
        offset += 1
        switch letter {
        case UInt8(ascii: "b"): content.append(0x08)
        case UInt8(ascii: "t"): content.append(0x09)
        case UInt8(ascii: "n"): content.append(0x0A)
        case UInt8(ascii: "f"): content.append(0x0C)
        case UInt8(ascii: "r"): content.append(0x0D)
        case UInt8(ascii: "\""): content.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): content.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = letter == UInt8(ascii: "u") ? 4 : 8
            // All hexadecimal digits first: UInt32(_:radix:) alone would also take a sign.
            guard offset + count <= bytes.count, bytes[offset..<offset + count].allSatisfy(Self.isHexDigit),
                let value = UInt32(String(decoding: bytes[offset..<offset + count], as: UTF8.self), radix: 16)
            else {
                throw error(
                    "\\\(Character(Unicode.Scalar(letter))) takes exactly \(count) hexadecimal digits", at: start)
            }
            guard let scalar = Unicode.Scalar(value) else {
                throw error("\\\(Character(Unicode.Scalar(letter))) names no Unicode character", at: start)
            }
            offset += count
            content.append(contentsOf: String(Character(scalar)).utf8)
        default:
            throw error(
                "unknown escape '\\\(Character(Unicode.Scalar(letter)))' (write '\\\\' for a backslash)", at: start)
        }
    }
}
