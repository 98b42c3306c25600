/// TOML's numbers, read from one token of a file.
enum TOMLNumber {
    /// `token` as TOML reads it: `42`, `-1_000`, `0xff`, `0o17`, `0b101`, `3.5`, `1e-3`, `+inf`, `nan`.
    static func value(of token: String) -> TOMLValue? {
        var digits = Substring(token)
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where digits.hasPrefix(prefix) {
            guard
                let body = withoutUnderscores(
                    digits.dropFirst(2), digit: { $0.isASCII && Int(String($0), radix: radix) != nil }),
                let value = Int64(body, radix: radix)
            else { return nil }
            return .integer(value)
        }
        var sign = ""
        if let first = digits.first, first == "+" || first == "-" {
            sign = first == "-" ? "-" : ""
            digits = digits.dropFirst()
        }
        switch digits {
        case "inf": return .float(sign == "-" ? -.infinity : .infinity)
        case "nan": return .float(.nan)
        default: break
        }
        let exponentStart = digits.firstIndex { $0 == "e" || $0 == "E" }
        let mantissa = digits[..<(exponentStart ?? digits.endIndex)]
        let point = mantissa.firstIndex(of: ".")
        let whole = mantissa[..<(point ?? mantissa.endIndex)]
        guard let wholeDigits = withoutUnderscores(whole, digit: isDecimalDigit),
            wholeDigits == "0" || !wholeDigits.hasPrefix("0")
        else { return nil }
        var text = sign + wholeDigits
        if let point {
            guard let fraction = withoutUnderscores(mantissa[mantissa.index(after: point)...], digit: isDecimalDigit)
            else { return nil }
            text += "." + fraction
        }
        if let exponentStart {
            var exponent = digits[digits.index(after: exponentStart)...]
            var exponentSign = ""
            if let first = exponent.first, first == "+" || first == "-" {
                exponentSign = String(first)
                exponent = exponent.dropFirst()
            }
            guard let exponentDigits = withoutUnderscores(exponent, digit: isDecimalDigit) else { return nil }
            text += "e" + exponentSign + exponentDigits
        }
        if point == nil, exponentStart == nil { return Int64(text).map(TOMLValue.integer) }
        return Double(text).map(TOMLValue.float)
    }

    private static func isDecimalDigit(_ character: Character) -> Bool { character.isASCII && character.isWholeNumber }

    /// `text`'s digits without the `_` TOML allows between two of them, or nil if it is empty, holds anything
    /// else, or has a `_` that is not between two digits.
    private static func withoutUnderscores(_ text: Substring, digit: (Character) -> Bool) -> String? {
        var digits = ""
        var previous: Character?
        for character in text {
            if character == "_" {
                guard let previous, previous != "_" else { return nil }
            } else {
                guard digit(character) else { return nil }
                digits.append(character)
            }
            previous = character
        }
        guard let previous, previous != "_" else { return nil }
        return digits
    }
}
