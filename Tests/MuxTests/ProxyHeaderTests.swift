import Testing

@testable import Mux

@Suite struct ProxyHeaderTests {
    static let origin4 = StreamOrigin(
        source: .init(bytes: [192, 0, 2, 1], port: 51000), destination: .init(bytes: [127, 0, 0, 1], port: 1082))!
    static let origin6 = StreamOrigin(
        source: .init(bytes: [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1], port: 443),
        destination: .init(bytes: Array(repeating: 0, count: 15) + [1], port: 8443))!

    @Test func versionOneIsOneLineNamingBothEnds() {
        #expect(
            String(decoding: ProxyHeader.encode(Self.origin4, version: .v1), as: UTF8.self)
                == "PROXY TCP4 192.0.2.1 127.0.0.1 51000 1082\r\n")
        #expect(
            String(decoding: ProxyHeader.encode(Self.origin6, version: .v1), as: UTF8.self)
                == "PROXY TCP6 2001:db8::1 ::1 443 8443\r\n")
        #expect(String(decoding: ProxyHeader.encode(nil, version: .v1), as: UTF8.self) == "PROXY UNKNOWN\r\n")
    }

    @Test func versionTwoIsSignatureCommandFamilyLengthThenAddressesThenPorts() {
        let expected: [UInt8] =
            ProxyHeader.v2Signature + [0x21, 0x11, 0, 12] + [192, 0, 2, 1, 127, 0, 0, 1] + [0xC7, 0x38, 0x04, 0x3A]
        #expect(ProxyHeader.encode(Self.origin4, version: .v2) == expected)
        #expect(ProxyHeader.encode(nil, version: .v2) == ProxyHeader.v2Signature + [0x20, 0, 0, 0])
    }

    /// Feeds `bytes` to a reader `missing` bytes at a time, as the gate does; returns the outcome and how many
    /// bytes it took.
    private func read(_ bytes: [UInt8]) -> (ProxyHeaderReader.Progress, taken: Int) {
        var reader = ProxyHeaderReader()
        var taken = 0
        while true {
            let piece = bytes[taken..<min(bytes.count, taken + reader.missing)]
            taken += piece.count
            let progress = reader.append(piece)
            if progress != .incomplete || taken == bytes.count { return (progress, taken) }
        }
    }

    @Test(arguments: [origin4, origin6])
    func readerTakesExactlyTheHeaderAndNothingAfterIt(origin: StreamOrigin) {
        let hello: [UInt8] = [0xAA, 0xBB, 0xCC]
        let header = ProxyHeader.encode(origin, version: .v2)
        let (progress, taken) = read(header + hello)
        #expect(progress == .complete(origin))
        #expect(taken == header.count)
    }

    @Test func readerSkipsTLVsAfterTheAddresses() {
        var header = ProxyHeader.encode(Self.origin4, version: .v2)
        header[15] += 7
        header += [0x04, 0, 4] + Array("abcd".utf8)  // PP2_TYPE_NOOP with 4 bytes
        #expect(read(header) == (.complete(Self.origin4), header.count))
    }

    @Test func aLocalHeaderNamesNoClient() {
        #expect(read(ProxyHeader.encode(nil, version: .v2)).0 == .complete(nil))
    }

    @Test(
        arguments: [
            Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".utf8),  // version 1 is not accepted here
            ProxyHeader.v2Signature + [0x11, 0x11, 0, 12] + Array(repeating: 0, count: 12),  // version 1 byte
            ProxyHeader.v2Signature + [0x22, 0x11, 0, 12] + Array(repeating: 0, count: 12),  // command 2
            ProxyHeader.v2Signature + [0x21, 0x11, 0, 8] + Array(repeating: 0, count: 8),  // too short for IPv4
            ProxyHeader.v2Signature + [0x21, 0x11, 0x02, 0x01],  // 513 bytes announced
        ] as [[UInt8]])
    func anythingElseIsRejected(bytes: [UInt8]) {
        guard case .rejected = read(bytes).0 else {
            Issue.record("accepted \(bytes)")
            return
        }
    }

    @Test func trustedBalancersTakeAddressesAndBlocksAndRefuseHostBits() throws {
        let trusted = try TrustedBalancers(parsing: ["10.0.0.5", "fd00::/8", "[::1]"])
        #expect(trusted.contains([10, 0, 0, 5]))
        #expect(!trusted.contains([10, 0, 0, 6]))
        #expect(trusted.contains([0xfd, 0x12] + Array(repeating: 0, count: 14)))
        #expect(trusted.contains(Array(repeating: 0, count: 15) + [1]))
        #expect(throws: RuleError.self) { try TrustedBalancers(parsing: ["10.0.0.1/8"]) }
        #expect(throws: RuleError.self) { try TrustedBalancers(parsing: ["balancer.internal"]) }
    }
}
