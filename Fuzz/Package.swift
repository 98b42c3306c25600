// swift-tools-version: 6.0
// The fuzzers: the project's own sources (linked in Sources/) built with libFuzzer and AddressSanitizer. A package
// of its own because those flags must apply to every target and must never reach the shipped binary.
// Build and run with scripts/fuzz.
import PackageDescription

let fuzzing: [SwiftSetting] = [.unsafeFlags(["-sanitize=fuzzer,address"])]

let package = Package(
    name: "tcptunnel-fuzz",
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CLinux"),
        .target(name: "Crypto", dependencies: ["CSodium"], swiftSettings: fuzzing),
        .target(
            name: "Mux",
            dependencies: [
                "Crypto",
                "CLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HashTreeCollections", package: "swift-collections"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: fuzzing),
        .target(name: "FuzzChecks", dependencies: ["Mux", "Crypto"], swiftSettings: fuzzing),
        .executableTarget(
            name: "Fuzzer", dependencies: ["FuzzChecks"], swiftSettings: fuzzing,
            // lld: gold fails on the DWARF of libFuzzer's runtime here.
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address", "-use-ld=lld"])]),
    ]
)
