import FuzzChecks

/// libFuzzer's entry for a program that has its own `main` (SwiftPM gives every executable one).
@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The check chosen on the command line; written once, before the fuzzer starts calling `testOneInput`.
nonisolated(unsafe) private var check: @Sendable ([UInt8]) -> Void = { _ in }

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    check(count == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: count)))
    return 0
}

/// `Fuzzer TARGET [libFuzzer options and corpus folders]`, TARGET one of FuzzChecks.targets.
@main enum Fuzzer {
    static func main() {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2, let chosen = FuzzChecks.targets[arguments[1]] else {
            print("usage: Fuzzer TARGET [libFuzzer options] [corpus folders]; targets: "
                + FuzzChecks.targets.keys.sorted().joined(separator: ", "))
            return
        }
        check = chosen
        // libFuzzer reads argv itself: hand it everything but TARGET.
        var argc = CommandLine.argc - 1
        let argv = CommandLine.unsafeArgv
        argv[1] = argv[0]
        var shifted = argv + 1
        _ = runFuzzerDriver(&argc, &shifted, testOneInput)
    }
}
