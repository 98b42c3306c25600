import Foundation
import Testing

@testable import Mux

/// A real HTTPS site on 127.0.0.1 for remote agents of the TLS transport to borrow the face of: Debian's nginx
/// with a self-signed certificate for `cover.example` of its own, serving one page. Started once for a suite
/// (`.coverSite`), stopped after its last test.
final class CoverSite: Sendable {
    static let binary = "/usr/sbin/nginx"
    static let serverName = "cover.example"
    /// Seconds nginx waits for a silent client before closing it.
    static let silenceTimeout = 3.0
    @TaskLocal static var shared: CoverSite?

    let endpoint: Endpoint
    /// The certificate nginx presents, and its key, PEM.
    let certificatePath: String
    let keyPath: String
    /// The page at `/`.
    let page: Data
    private let prefix: String
    private let process: SpawnedProcess

    init() throws {
        try DebianPackages.ensureInstalled("nginx", providing: Self.binary)
        prefix = NSTemporaryDirectory() + "tcptunnel-cover-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: prefix + "/www", withIntermediateDirectories: true)
        certificatePath = prefix + "/cert.pem"
        keyPath = prefix + "/key.pem"
        let certificate = try run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                "-subj", "/CN=\(Self.serverName)", "-addext", "subjectAltName=DNS:\(Self.serverName)", "-keyout",
                keyPath, "-out", certificatePath,
            ])
        guard certificate.status == 0 else { throw MissingComponent("openssl req failed: \(certificate.errors)") }
        // A page of some size, the same every time it is asked for.
        page = Data(
            (0..<400).map { "<p>Line \($0) of the cover site's own page, which strangers get.</p>\n" }.joined()
                .utf8)
        try page.write(to: URL(fileURLWithPath: prefix + "/www/index.html"))
        let port = try freeLoopbackPort()
        endpoint = Endpoint(host: "127.0.0.1", port: port)
        let configuration = """
            error_log \(prefix)/error.log info;
            pid \(prefix)/nginx.pid;
            events { worker_connections 512; }
            http {
                access_log \(prefix)/access.log;
                # A silent client is closed after this long (nginx's default is 60 s): short enough for a test
                # to see that a stranger the agent relays meets the cover's timeout, not the agent's.
                client_header_timeout \(Int(Self.silenceTimeout))s;
                client_body_temp_path \(prefix)/body;
                proxy_temp_path \(prefix)/proxy;
                fastcgi_temp_path \(prefix)/fastcgi;
                uwsgi_temp_path \(prefix)/uwsgi;
                scgi_temp_path \(prefix)/scgi;
                server {
                    listen 127.0.0.1:\(port) ssl;
                    server_name \(Self.serverName);
                    ssl_certificate \(certificatePath);
                    ssl_certificate_key \(keyPath);
                    ssl_protocols TLSv1.2 TLSv1.3;
                    root \(prefix)/www;
                }
            }
            """
        try configuration.write(toFile: prefix + "/nginx.conf", atomically: true, encoding: .utf8)
        let process = try SpawnedProcess(
            Self.binary, ["-p", prefix, "-c", prefix + "/nginx.conf", "-g", "daemon off; master_process off;"],
            output: prefix + "/output.log")
        self.process = process
        try awaitListening(isRunning: { process.isRunning }, at: endpoint, what: "nginx", log: prefix + "/error.log")
    }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(atPath: prefix)
    }

    /// The site a test runs with: the suite's, under `.coverSite`.
    static var current: CoverSite {
        get throws { try #require(shared, "the suite needs the .coverSite trait") }
    }
}

/// Runs a suite with one `CoverSite` for all of its tests (`CoverSite.current`).
struct CoverSiteTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let site = try CoverSite()
        defer { site.stop() }
        try await CoverSite.$shared.withValue(site) { try await function() }
    }
}

extension Trait where Self == CoverSiteTrait {
    /// One nginx cover site for the whole suite.
    static var coverSite: Self { Self() }
}

/// `openssl s_server` as a cover that writes every handshake message it receives, in hex (`-msg`): what shows
/// that a connection relayed to it arrived byte for byte. It serves one connection at a time.
final class MessageLoggingCover: Sendable {
    let endpoint: Endpoint
    private let process: SpawnedProcess
    private let logPath: String
    private let directory: String

    /// s_server with `certificate` and `key`, and `extra` options (`-tls1_2` for a server without TLS 1.3).
    init(certificate: String, key: String, extra: [String] = []) throws {
        directory = NSTemporaryDirectory() + "tcptunnel-s_server-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        logPath = directory + "/messages.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let port = try freeLoopbackPort()
        endpoint = Endpoint(host: "127.0.0.1", port: port)
        let process = try SpawnedProcess(
            "/usr/bin/openssl",
            ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificate, "-key", key, "-msg", "-www"] + extra,
            output: logPath)
        self.process = process
        try awaitListening(
            isRunning: { process.isRunning }, at: endpoint, what: "openssl s_server", log: logPath)
    }

    /// Every ClientHello handshake message it has received so far (the record's payload), in order.
    var clientHellos: [[UInt8]] {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        var hellos: [[UInt8]] = []
        var current: [UInt8]?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("<<<") || line.hasPrefix(">>>") {
                if let hello = current { hellos.append(hello) }
                current = line.hasPrefix("<<<") && line.hasSuffix("ClientHello") ? [] : nil
            } else if current != nil {
                current! += line.split(separator: " ").compactMap { UInt8($0, radix: 16) }
            }
        }
        if let hello = current { hellos.append(hello) }
        return hellos
    }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
