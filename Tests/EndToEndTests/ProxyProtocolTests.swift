import Foundation
import Glibc
import Testing

@testable import Mux

/// `--proxy-protocol`: a target behind the tunnel learns each client's own address and port.
@Suite(.serialized) struct ProxyProtocolTests {
    /// A target that reads a PROXY header of `version` and answers the client address it names, as
    /// `HOST:PORT\n`, or `unknown\n`; then echoes, so the stream's own bytes are checked after it.
    private static func addressReportingTarget(_ version: ProxyProtocolVersion) throws -> TestTarget {
        try TestTarget { socket in
            socket.setReceiveTimeout(seconds: 10)
            let named: String
            switch version {
            case .v1:
                var line: [UInt8] = []
                while line.suffix(2) != [13, 10] {
                    guard let byte = try? socket.receive(exactly: 1, before: .now + .seconds(10)) else { return }
                    line += byte
                }
                let fields = String(decoding: line.dropLast(2), as: UTF8.self).split(separator: " ")
                named = fields.count == 6 ? "\(fields[2]):\(fields[4])" : "unknown"
            case .v2:
                var reader = ProxyHeaderReader()
                var progress = ProxyHeaderReader.Progress.incomplete
                while progress == .incomplete {
                    guard let piece = try? socket.receive(exactly: reader.missing, before: .now + .seconds(10)) else {
                        return
                    }
                    progress = reader.append(piece[...])
                }
                guard case .complete(let origin) = progress else { return }
                named = origin.map { "\($0.source)" } ?? "unknown"
            }
            guard (try? socket.sendAll(Array("\(named)\n".utf8))) != nil else { return }
            var buffer = [UInt8](repeating: 0, count: 4096)
            while let count = try? buffer.withUnsafeMutableBytes({ try socket.receive(into: $0) }), count > 0 {
                guard
                    (try? buffer.withUnsafeBytes({ try socket.sendAll(UnsafeRawBufferPointer(rebasing: $0[..<count])) }))
                        != nil
                else { return }
            }
        }
    }

    @Test(arguments: ProxyProtocolVersion.allCases)
    func theTargetSeesEachClientsOwnAddressAndPort(version: ProxyProtocolVersion) throws {
        let target = try Self.addressReportingTarget(version)
        defer { target.stop() }
        var settings = testSettings()
        settings.proxyProtocol = version
        let tunnel = try ForwardingTunnel(
            target: target.endpoint, forwards: [.tunnel(listen: loopback)], settings: settings)
        defer { tunnel.stop() }
        for source in ["127.0.0.7", "127.0.0.8"] {
            let fd = Flooder.connect(from: source, port: tunnel.endpoints[0].port)
            try #require(fd >= 0)
            let client = Socket(fd: fd)
            defer { client.close() }
            let expected = "\(client.localEndpoint)\n"
            #expect(expected.hasPrefix(source + ":"))
            let answer = try? client.receive(exactly: expected.utf8.count, before: .now + .seconds(5))
            #expect(answer.map { String(decoding: $0, as: UTF8.self) } == expected)
            #expect(
                try echoesExactly(pattern(count: 50_000, seed: 3), over: client), "the stream's bytes follow the header"
            )
        }
    }

    @Test func withoutTheOptionTheTargetGetsOnlyTheClientsBytes() throws {
        let target = try TestTarget.echo()
        defer { target.stop() }
        let tunnel = try ForwardingTunnel(target: target.endpoint, forwards: [.tunnel(listen: loopback)])
        defer { tunnel.stop() }
        #expect(try echoesExactly(Array("PROXY-free".utf8), through: tunnel.endpoints[0]))
    }
}
