import ArgumentParser
import Mux

/// `--transport`: how a link looks on the wire (README, "Crossing a censoring firewall").
enum TransportName: String, ExpressibleByArgument, CaseIterable {
    /// tcptunnel's own: a printable hello each way, then sealed frames.
    case native
    /// TLS 1.3 in the shape of a browser visiting a real site, the remote agent's cover.
    case tls
}

/// Checks the server name a local agent of the TLS transport writes in its hello: a DNS name, as a browser
/// sends (never an address, which a browser leaves out). Throws a `ValidationError` naming the option.
func validateServerName(_ name: String) throws {
    let labels = name.split(separator: ".", omittingEmptySubsequences: false)
    let isLabel: (Substring) -> Bool = { label in
        (1...63).contains(label.count) && label.first != "-" && label.last != "-"
            && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
    }
    guard name.count <= 253, labels.count >= 2, labels.allSatisfy(isLabel),
        !labels.last!.allSatisfy(\.isNumber)
    else {
        throw ValidationError(
            "--sni \(name): give the cover site's DNS name, as a browser would send it (like www.example.com)")
    }
}
