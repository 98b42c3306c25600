/// Number and text formatting for the benchmark's tables and parsers, without Foundation's `String(format:)`
/// and `trimmingCharacters(in:)`, which need the whole Foundation.
extension Double {
    /// The value rounded to `decimals` places, written with exactly that many (`%.{decimals}f`).
    func formatted(decimals: Int) -> String {
        guard isFinite else { return "\(self)" }
        let scale = (0..<decimals).reduce(1.0) { result, _ in result * 10 }
        let scaled = (abs(self) * scale).rounded()
        let whole = Int(scaled / scale)
        let sign = self < 0 && scaled > 0 ? "-" : ""
        guard decimals > 0 else { return sign + String(whole) }
        let fraction = String(Int(scaled - Double(whole) * scale))
        return sign + String(whole) + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }

    /// The shortest decimal form (`%g`-like for the benchmark's inputs): `25`, `0.5`, `1.25`.
    var shortest: String {
        self == rounded() && abs(self) < 1e15 ? String(Int(self)) : "\(self)"
    }
}

extension StringProtocol {
    /// The text without white space (spaces, tabs, newlines) at either end. `bench`'s command line uses it too.
    package var trimmed: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
