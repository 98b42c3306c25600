import Testing

@testable import Mux

/// The Great Firewall's fully encrypted traffic detector, rule by rule. Each crafted payload makes exactly one
/// exemption hold (or none), so a test fails for one reason.
struct FullyEncryptedDetectorTests {
    typealias Detector = FullyEncryptedDetector

    /// Non-printable bytes of four set bits each: an average of 4, no printable byte, no TLS or HTTP prefix, so no
    /// exemption holds for any payload made of them alone.
    static func filler(_ count: Int) -> [UInt8] {
        let cycle: [UInt8] = [0x8e, 0xf0, 0x1b, 0xc3]
        return (0..<count).map { cycle[$0 % cycle.count] }
    }

    /// `threes` non-printable bytes of 3 set bits (0x83), then `others` of `otherBits` set bits (0xf0 has 4,
    /// 0x8f has 5).
    static func mixed(threes: Int, others: Int, otherBits: Int) -> [UInt8] {
        let other: UInt8 = otherBits == 4 ? 0xf0 : 0x8f
        return [UInt8](repeating: 0x83, count: threes) + [UInt8](repeating: other, count: others)
    }

    @Test func theFillerAloneIsABlockingCandidateUnderBothRuleSets() {
        for rules in Detector.RuleSet.allCases {
            #expect(Detector.exemptions(Self.filler(100), under: rules) == [])
        }
    }

    @Test func uniformlyRandomThousandBytePayloadsAreBlockingCandidatesUnderBothRuleSets() {
        // About 1 in 380 uniform payloads starts with six printable bytes (Ex2); none of this seed's 50 does.
        var generator = SeededGenerator(seed: 0x5EED)
        for _ in 0..<50 {
            let payload = (0..<1000).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            for rules in Detector.RuleSet.allCases {
                #expect(Detector.isBlockingCandidate(payload, under: rules), "\(rules): \(payload.prefix(8))")
            }
        }
    }

    @Test func anAveragePopcountOfExactly3Point40IsExemptByEx1() {
        let payload = Self.mixed(threes: 60, others: 40, otherBits: 4)  // 340 bits over 100 bytes
        for rules in Detector.RuleSet.allCases {
            #expect(Detector.exemptions(payload, under: rules) == [.ex1])
        }
    }

    @Test func anAveragePopcountOf3Point42IsABlockingCandidate() {
        let payload = Self.mixed(threes: 58, others: 42, otherBits: 4)  // 342 bits over 100 bytes
        #expect(Detector.isBlockingCandidate(payload, under: .paper))
        #expect(Detector.isBlockingCandidate(payload, under: .openGFW))
    }

    @Test func anAveragePopcountOfExactly4Point6IsExemptByEx1() {
        let payload = Self.mixed(threes: 0, others: 60, otherBits: 5) + Self.mixed(threes: 0, others: 40, otherBits: 4)
        for rules in Detector.RuleSet.allCases {
            #expect(Detector.exemptions(payload, under: rules) == [.ex1])
        }
    }

    @Test func anAveragePopcountOf4Point58IsABlockingCandidate() {
        let payload = Self.mixed(threes: 0, others: 58, otherBits: 5) + Self.mixed(threes: 0, others: 42, otherBits: 4)
        for rules in Detector.RuleSet.allCases {
            #expect(Detector.isBlockingCandidate(payload, under: rules))
        }
    }

    @Test func aTLSHandshakeRecordHeaderIsExemptByEx5UnderBothRuleSets() {
        let payload = [0x16, 0x03, 0x01] + Self.filler(100)
        for rules in Detector.RuleSet.allCases {
            #expect(Detector.exemptions(payload, under: rules) == [.ex5])
        }
    }

    @Test func aTLSApplicationDataRecordHeaderIsExemptUnderThePaperOnly() {
        let payload = [0x17, 0x03, 0x03] + Self.filler(100)
        #expect(Detector.exemptions(payload, under: .paper) == [.ex5])
        #expect(Detector.exemptions(payload, under: .openGFW) == [])
    }

    @Test func aTLSRecordVersionAbove3Point3IsExemptUnderThePaperOnly() {
        let payload = [0x16, 0x03, 0x04] + Self.filler(100)
        #expect(Detector.exemptions(payload, under: .paper) == [.ex5])
        #expect(Detector.exemptions(payload, under: .openGFW) == [])
    }

    @Test func aTLSRecordVersionAbove3Point9IsABlockingCandidateUnderBothRuleSets() {
        let payload = [0x16, 0x03, 0x0a] + Self.filler(100)
        for rules in Detector.RuleSet.allCases {
            #expect(Detector.isBlockingCandidate(payload, under: rules))
        }
    }

    @Test(arguments: ["GET ", "PUT ", "POST ", "HEAD "])
    func thePapersHTTPRequestPrefixesAreExemptByEx5UnderBothRuleSets(prefix: String) {
        let payload = Array(prefix.utf8) + Self.filler(100)
        for rules in Detector.RuleSet.allCases {
            #expect(Detector.exemptions(payload, under: rules) == [.ex5])
        }
    }

    /// Five letters, so that the sixth byte (filler) keeps Ex2 from holding.
    @Test(arguments: ["DELET", "CONNE", "OPTIO", "TRACE", "PATCH", "GET/x"])
    func otherHTTPMethodsAreExemptByEx5UnderOpenGFWOnly(prefix: String) {
        let payload = Array(prefix.utf8) + Self.filler(100)
        #expect(Detector.exemptions(payload, under: .paper) == [])
        #expect(Detector.exemptions(payload, under: .openGFW) == [.ex5])
    }

    @Test func sixPrintableBytesFirstAreExemptByEx2() {
        let payload = Array("ABCDEF".utf8) + Self.filler(100)
        for rules in Detector.RuleSet.allCases {
            #expect(Detector.exemptions(payload, under: rules) == [.ex2])
        }
    }

    @Test func fivePrintableBytesFirstAreABlockingCandidate() {
        let payload = Array("ABCDE".utf8) + Self.filler(100)
        for rules in Detector.RuleSet.allCases {
            #expect(Detector.isBlockingCandidate(payload, under: rules))
        }
    }

    @Test func aRunOf21PrintableBytesInTheMiddleIsExemptByEx4() {
        let payload = Self.filler(50) + [UInt8](repeating: UInt8(ascii: "x"), count: 21) + Self.filler(50)
        for rules in Detector.RuleSet.allCases {
            #expect(Detector.exemptions(payload, under: rules) == [.ex4])
        }
    }

    @Test func aRunOf20PrintableBytesInTheMiddleIsABlockingCandidate() {
        let payload = Self.filler(50) + [UInt8](repeating: UInt8(ascii: "x"), count: 20) + Self.filler(50)
        for rules in Detector.RuleSet.allCases {
            #expect(Detector.isBlockingCandidate(payload, under: rules))
        }
    }

    /// `printable` of 100 bytes printable ("x", four set bits), in runs of at most three, starting with filler.
    static func interleaved(printable: Int) -> [UInt8] {
        let pairs = (0..<(100 - printable)).flatMap { _ in [Self.filler(1)[0], UInt8(ascii: "x")] }
        return pairs + [UInt8](repeating: UInt8(ascii: "x"), count: 100 - pairs.count)
    }

    @Test func fiftyOnePercentPrintableIsExemptByEx3() {
        let payload = Self.interleaved(printable: 51)
        for rules in Detector.RuleSet.allCases {
            #expect(Detector.exemptions(payload, under: rules) == [.ex3])
        }
    }

    @Test func exactlyHalfPrintableIsABlockingCandidate() {
        let payload = Self.interleaved(printable: 50)
        for rules in Detector.RuleSet.allCases {
            #expect(Detector.isBlockingCandidate(payload, under: rules))
        }
    }
}
