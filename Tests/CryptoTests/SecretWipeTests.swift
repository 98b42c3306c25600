import Foundation
import Testing

@testable import Crypto

/// PROTOCOL.md §9: no copy of a secret outlives its use in ordinary memory. It is searched for where a freed
/// temporary would stay: every writable anonymous mapping of the process (the heap and malloc's arenas, other
/// threads' stacks), but the stack of this thread, where libsodium's hash keeps its own locals. Nothing is
/// allocated between the work and the search, so that no freed block is reused and overwritten meanwhile. The copy
/// 0.11.0 left (a concatenation of label, secret and transcript) shows in an optimised build only, so CI also runs
/// this suite with `-c release`.
@Suite struct SecretWipeTests {
    @Test func theSharedSecretLeavesNoCopyInTheHeapOnceTheSessionKeysExist() throws {
        let key = try makeKey()
        var secret = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 73 &+ 0xA5) ^ 0x5C }
        let transcript = [UInt8](repeating: 0x33, count: 900)
        var search = try MemorySearch()
        for _ in 0..<64 { _ = try SessionKeys(presharedKey: key, sharedSecret: secret, transcript: transcript) }
        var stackProbe = 0
        let found = withUnsafeMutablePointer(to: &stackProbe) {
            search.copies(of: secret, skipping: UnsafeRawPointer($0))
        }
        wipe(&secret)
        #expect(found == 0, "copies of the shared secret left in the heap")
    }
}

/// Searches the process's own memory for a pattern without allocating: its buffers are mapped up front.
private struct MemorySearch {
    private let chunk = 1 << 20
    private let buffer: UnsafeMutableRawPointer
    private var ranges: [(start: UInt, end: UInt)] = []

    init() throws {
        guard let mapped = mmap(nil, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            mapped != MAP_FAILED
        else { throw POSIXError(.ENOMEM) }
        buffer = mapped
        ranges.reserveCapacity(1 << 16)
    }

    /// How many times `pattern` appears in writable private mappings without a file, but the one holding `skipped`
    /// and `pattern`'s own bytes. Read through /proc/self/mem, so that a mapping another thread unmaps meanwhile
    /// reads as an error rather than a crash.
    mutating func copies(of pattern: [UInt8], skipping skipped: UnsafeRawPointer) -> Int {
        readMappings(skipping: [UInt(bitPattern: skipped), UInt(bitPattern: buffer)])
        let memory = open("/proc/self/mem", O_RDONLY)
        guard memory >= 0 else { return -1 }
        defer { close(memory) }
        var count = 0
        pattern.withUnsafeBytes { needle in
            let own = UInt(bitPattern: needle.baseAddress)
            for (first, end) in ranges {
                // Chunks overlap by the pattern's length less one, so that a copy across two is seen once.
                var start = first
                while end - start >= UInt(needle.count) {
                    let length = Int(min(UInt(chunk), end - start))
                    let read = pread(memory, buffer, length, off_t(Int64(bitPattern: UInt64(start))))
                    guard read >= needle.count else { break }
                    let haystack = UnsafeRawBufferPointer(start: buffer, count: read)
                    var offset = 0
                    while let position = find(needle, in: haystack, from: offset) {
                        if start + UInt(position) != own { count += 1 }
                        offset = position + 1
                    }
                    guard read == length, start + UInt(length) < end else { break }
                    start += UInt(length - (needle.count - 1))
                }
            }
        }
        return count
    }

    /// Reads /proc/self/maps into the buffer and keeps the `rw-p` mappings with no file (or `[heap]`) that hold
    /// none of `skipped`.
    private mutating func readMappings(skipping skipped: [UInt]) {
        ranges.removeAll(keepingCapacity: true)
        let file = open("/proc/self/maps", O_RDONLY)
        guard file >= 0 else { return }
        defer { close(file) }
        var total = 0
        while total < chunk {
            let count = read(file, buffer + total, chunk - total)
            guard count > 0 else { break }
            total += count
        }
        let text = UnsafeRawBufferPointer(start: buffer, count: total)
        var lineStart = 0
        for index in 0..<total where text[index] == UInt8(ascii: "\n") {
            // A mapping beyond 4 GiB is no heap or stack but a sanitizer's shadow, which this must not read.
            if let range = writableAnonymous(text[lineStart..<index]), range.end - range.start <= 1 << 32,
                !skipped.contains(where: { range.start <= $0 && $0 < range.end })
            {
                ranges.append(range)
            }
            lineStart = index + 1
        }
    }

    /// The bounds of a maps line `start-end rw-p offset dev inode [name]` whose name is empty or `[heap]`.
    private func writableAnonymous(_ line: Slice<UnsafeRawBufferPointer>) -> (start: UInt, end: UInt)? {
        var fieldCount = 0
        var bounds = line.startIndex..<line.startIndex
        var permissions = bounds
        var name = bounds
        var fieldStart: Int?
        for index in line.startIndex...line.endIndex {
            let isSpace = index == line.endIndex || line[index] == UInt8(ascii: " ")
            if isSpace, let start = fieldStart {
                switch fieldCount {
                case 0: bounds = start..<index
                case 1: permissions = start..<index
                case 5: name = start..<index
                default: break
                }
                fieldCount += 1
                fieldStart = nil
            } else if !isSpace && fieldStart == nil {
                fieldStart = index
            }
        }
        guard fieldCount >= 5, line[permissions].elementsEqual("rw-p".utf8),
            fieldCount == 5 || line[name].elementsEqual("[heap]".utf8),
            let dash = line[bounds].firstIndex(of: UInt8(ascii: "-")),
            let start = hex(line[bounds.lowerBound..<dash]), let end = hex(line[(dash + 1)..<bounds.upperBound])
        else { return nil }
        return (start, end)
    }

    private func hex(_ digits: Slice<UnsafeRawBufferPointer>) -> UInt? {
        var value: UInt = 0
        for digit in digits {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = value << 4 | UInt(digit - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = value << 4 | UInt(digit - UInt8(ascii: "a") + 10)
            default: return nil
            }
        }
        return value
    }

    /// The offset of the first copy of `needle` in `haystack` at or after `offset`.
    private func find(_ needle: UnsafeRawBufferPointer, in haystack: UnsafeRawBufferPointer, from offset: Int) -> Int? {
        var position = offset
        while haystack.count - position >= needle.count {
            guard
                let hit = memchr(
                    haystack.baseAddress! + position, Int32(needle[0]), haystack.count - position - needle.count + 1)
            else { return nil }
            let candidate = UnsafeRawPointer(hit) - haystack.baseAddress!
            if memcmp(hit, needle.baseAddress!, needle.count) == 0 { return candidate }
            position = candidate + 1
        }
        return nil
    }
}
