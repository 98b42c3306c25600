import Testing

@testable import Mux

@Suite struct PendingTableTests {
    private func source(_ last: UInt8) -> ConnectionSource { ConnectionSource(addressBytes: [127, 0, 0, last]) }

    @Test func connectionsAreAdmittedWithoutSheddingWhileThereIsRoom() {
        var table = PendingTable(capacity: 3, capacityPerSource: 3)
        var generator = SeededGenerator(seed: 1)
        for fd in Int32(10)..<13 {
            #expect(table.admit(fd, from: source(2), now: UInt64(fd), deadline: 100, using: &generator) == nil)
        }
        #expect(table.count == 3)
    }

    @Test func fullTableShedsAnOldPendingConnectionAndKeepsTheNewcomer() {
        var table = PendingTable(capacity: 100, capacityPerSource: 100)
        var generator = SeededGenerator(seed: 2)
        for fd in Int32(0)..<100 {
            _ = table.admit(fd, from: source(UInt8(2 + fd % 50)), now: UInt64(fd), deadline: 1000, using: &generator)
        }
        let shed = table.admit(500, from: source(200), now: 100, deadline: 1000, using: &generator)
        #expect(shed != nil && shed != 500)
        #expect(table.count == 100)
        #expect(table[500] != nil)
        #expect(table[shed!] == nil)
    }

    @Test func aLegitimateHelloArrivingMillisecondsAfterItsConnectIsAlmostNeverShed() {
        // 2,000 silent flood connections fill the table; a real agent connects, and 50 more flood connections
        // arrive before its hello does. Over 200 seeded trials it is never the one shed.
        var shedCount = 0
        for trial in 0..<200 {
            var table = PendingTable(capacity: 2000, capacityPerSource: 2000)
            var generator = SeededGenerator(seed: UInt64(trial))
            for fd in Int32(0)..<2000 {
                _ = table.admit(fd, from: source(2), now: UInt64(fd), deadline: .max, using: &generator)
            }
            _ = table.admit(9999, from: source(1), now: 2000, deadline: .max, using: &generator)
            for fd in Int32(2001)..<2051 {
                _ = table.admit(fd, from: source(2), now: UInt64(fd), deadline: .max, using: &generator)
            }
            if table[9999] == nil { shedCount += 1 }
        }
        #expect(shedCount == 0)
    }

    @Test func sourceAtItsCapShedsItsOwnOldestConnectionAndNoOtherSources() {
        var table = PendingTable(capacity: 100, capacityPerSource: 3)
        var generator = SeededGenerator(seed: 3)
        _ = table.admit(1, from: source(9), now: 0, deadline: 1000, using: &generator)
        for fd in Int32(10)..<13 {
            _ = table.admit(fd, from: source(2), now: UInt64(fd), deadline: 1000, using: &generator)
        }
        #expect(table.admit(13, from: source(2), now: 13, deadline: 1000, using: &generator) == 10)
        #expect(table[1] != nil, "another source's connection is untouched")
        #expect(table.count == 4)
    }

    @Test func aBalancersConnectionsAwaitTheirHeaderOutsideTheBalancersCapThenCountForTheClientItNames() {
        var table = PendingTable(capacity: 100, capacityPerSource: 2)
        var generator = SeededGenerator(seed: 4)
        for fd in Int32(10)..<15 {
            let provisional = ConnectionSource(awaitingHeaderOn: fd)
            #expect(table.admit(fd, from: provisional, now: UInt64(fd), deadline: 1000, using: &generator) == nil)
        }
        #expect(table.count == 5, "five connections from one balancer, beyond its per-source cap of 2")
        #expect(table.reassign(10, to: source(7)) == nil)
        #expect(table.reassign(11, to: source(7)) == nil)
        #expect(table.reassign(12, to: source(7)) == 10, "the named client is held to its own cap")
        #expect(table[12]?.deadline == 1000 && table[12]?.acceptedAt == 12)
        #expect(table.count == 4)
    }

    @Test func anIPv6SourceIsItsSlash64() {
        let first = ConnectionSource(
            addressBytes: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1] + [UInt8](repeating: 1, count: 8))
        let sameNetwork = ConnectionSource(
            addressBytes: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1] + [UInt8](repeating: 9, count: 8))
        let otherNetwork = ConnectionSource(
            addressBytes: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 2] + [UInt8](repeating: 1, count: 8))
        #expect(first == sameNetwork)
        #expect(first != otherNetwork)
    }

    @Test func anIPv4MappedAddressCountsAsItsIPv4Address() {
        let mapped = ConnectionSource(addressBytes: [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 192, 0, 2, 7])
        #expect(mapped == ConnectionSource(addressBytes: [192, 0, 2, 7]))
        #expect(mapped != ConnectionSource(addressBytes: [192, 0, 2, 8]))
    }

    @Test func expiredListsOnlyConnectionsPastTheirDeadline() {
        var table = PendingTable(capacity: 10, capacityPerSource: 10)
        var generator = SeededGenerator(seed: 4)
        _ = table.admit(1, from: source(2), now: 0, deadline: 50, using: &generator)
        _ = table.admit(2, from: source(2), now: 0, deadline: 150, using: &generator)
        #expect(table.expired(now: 100) == [1])
        table.remove(1)
        #expect(table.expired(now: 100).isEmpty)
        #expect(table.count == 1)
    }
}

@Suite struct RejectionReportTests {
    @Test func firstRejectionIsReportedAtOnceAndLaterOnesOncePerInterval() {
        var report = RejectionReport(interval: 10)
        report.record(.notAuthentic)
        let first = report.line(now: 1_000_000_000, pending: 3)
        #expect(first?.hasPrefix("turned away 1 unauthenticated connection: 1 not authentic") == true)
        #expect(first?.hasSuffix("; 3 pending") == true)
        for _ in 0..<500 { report.record(.silent) }
        report.record(.shed)
        #expect(report.line(now: 5_000_000_000, pending: 0) == nil, "within the interval, nothing more is said")
        let second = report.line(now: 11_000_000_000, pending: 0)
        #expect(second?.hasPrefix("turned away 501 unauthenticated connections in the last 10 s: 500 silent") == true)
        #expect(second?.contains("1 shed") == true)
        #expect(report.line(now: 30_000_000_000, pending: 0) == nil, "nothing to say, no line")
    }

    @Test func whatIsCountedButNotYetSaidIsSaidWhenTheAgentStops() {
        var report = RejectionReport(interval: 10)
        report.record(.silent)
        _ = report.line(now: 1_000_000_000, pending: 0)
        report.record(.replayed)
        #expect(report.line(now: 2_000_000_000, pending: 0) == nil, "not due yet")
        let last = report.finalLine(now: 3_000_000_000, pending: 0)
        #expect(last?.hasPrefix("turned away 1 unauthenticated connection in the last 2 s: 1 replayed") == true)
        #expect(report.finalLine(now: 4_000_000_000, pending: 0) == nil, "said once")
    }

    @Test func healthChecksAreCountedButNeverMakeALine() {
        var report = RejectionReport(interval: 10)
        for _ in 0..<100 { report.record(.closedWithoutData) }
        #expect(report.nextLineDue == nil)
        #expect(report.line(now: 1_000_000_000, pending: 0) == nil)
    }
}
