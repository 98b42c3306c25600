extension BenchTable {
    /// The outage load: for each route with a link, whether its streams went on through each outage, and each
    /// pause.
    static func outageTable(_ report: BenchReport) -> String {
        let measured = report.routes.filter { $0.outages != nil }
        guard let cause = measured.first?.outages?.cause else { return "" }
        var out = "\n### Outages under 4 bulk streams and an interactive one: \(cause)\n\n"
        out += "| route | streams went on, every byte exact | interactive stream's pause after each outage |\n"
        out += "|---|---|---|\n"
        for route in measured {
            let outages = route.outages!
            let pauses = outages.pausesMilliseconds.map { $0.map { "\(BenchRunner.format($0)) ms" } ?? "–" }
            let verdict =
                outages.survived
                ? "yes" : "no: \(outages.interactiveFailure ?? outages.bulk.firstFailure ?? "a stream never resumed")"
            out += "| \(route.name) | \(verdict) | \(pauses.joined(separator: ", ")) |\n"
        }
        return out
    }
}
