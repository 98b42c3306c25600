import Foundation
import Testing

@testable import Mux

/// A real DNS server on 127.0.0.1: Debian's dnsmasq answering from a hosts file of its own (`DNSServer.names`
/// names, each with an address of its own) and asking no one else. Started once for a suite (`.dnsServer`),
/// stopped after its last test.
final class DNSServer: Sendable {
    static let binary = "/usr/sbin/dnsmasq"
    static let dig = "/usr/bin/dig"
    @TaskLocal static var shared: DNSServer?

    /// Clients and questions per client the names are made for: `c3-q7.tunnel.test` is 10.3.7.1.
    static let clients = 50
    static let questions = 20

    /// The name client `client` asks in its `question`th question, and the address that is its answer.
    static func name(client: Int, question: Int) -> (name: String, address: String) {
        ("c\(client)-q\(question).tunnel.test", "10.\(client).\(question).1")
    }

    let endpoint: Endpoint
    private let prefix: String
    private let process: SpawnedProcess

    init() throws {
        try DebianPackages.ensureInstalled("dnsmasq-base", providing: Self.binary)
        try DebianPackages.ensureInstalled("bind9-dnsutils", providing: Self.dig)
        prefix = NSTemporaryDirectory() + "tcptunnel-dns-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: prefix, withIntermediateDirectories: true)
        let hosts = (0..<Self.clients).flatMap { client in
            (0..<Self.questions).map { question in
                let (name, address) = Self.name(client: client, question: question)
                return "\(address) \(name)\n"
            }
        }
        try hosts.joined().write(toFile: prefix + "/hosts", atomically: true, encoding: .utf8)
        let port = try freeLoopbackPort()
        endpoint = Endpoint(host: "127.0.0.1", port: port)
        let process = try SpawnedProcess(
            Self.binary,
            [
                "--keep-in-foreground", "--conf-file=/dev/null", "--port=\(port)", "--listen-address=127.0.0.1",
                "--bind-interfaces", "--no-resolv", "--no-hosts", "--addn-hosts=\(prefix)/hosts",
                "--pid-file=\(prefix)/pid", "--log-facility=\(prefix)/log",
            ],
            output: prefix + "/output.log")
        self.process = process
        // dnsmasq answers over TCP as well as UDP, on the same port.
        try awaitListening(isRunning: { process.isRunning }, at: endpoint, what: "dnsmasq", log: prefix + "/output.log")
    }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(atPath: prefix)
    }

    /// The server a test runs with: the suite's, under `.dnsServer`.
    static var current: DNSServer {
        get throws { try #require(shared, "the suite needs the .dnsServer trait") }
    }

    /// Runs `dig` at `server` from UDP port `sourcePort` of 127.0.0.1 with the questions `names`, one after the
    /// other, each given two tries of 5 s as a resolver would (the suite runs under the thread sanitizer too, on two
    /// cores shared with 50 dig processes); returns what it printed, one line per answer.
    static func ask(_ names: [String], at server: Endpoint, fromPort sourcePort: UInt16) throws -> [String] {
        let batch = NSTemporaryDirectory() + "tcptunnel-dig-\(UUID().uuidString)"
        try names.joined(separator: "\n").write(toFile: batch, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: batch) }
        let result = try run(
            dig,
            [
                "@\(server.host)", "-p", "\(server.port)", "-b", "127.0.0.1#\(sourcePort)", "+short", "+time=5",
                "+tries=2", "-f", batch,
            ])
        return String(decoding: result.output, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}

/// Runs a suite with one `DNSServer` for all of its tests (`DNSServer.current`).
struct DNSServerTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let server = try DNSServer()
        defer { server.stop() }
        try await DNSServer.$shared.withValue(server) { try await function() }
    }
}

extension Trait where Self == DNSServerTrait {
    /// One dnsmasq for the whole suite.
    static var dnsServer: Self { Self() }
}
