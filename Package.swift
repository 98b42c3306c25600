// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "tcptunnel",
    products: [
        .executable(name: "tcptunnel", targets: ["App"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        // epoll(7), accept4(2), setns(2) and the TUN ioctl, which Swift's Glibc module leaves out; part of glibc
        // and the kernel headers, so nothing to link.
        .systemLibrary(name: "CLinux"),
        .target(name: "CrashExit"),
        .target(name: "Crypto", dependencies: ["CSodium"], swiftSettings: shippedCode + optimizedForSize),
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
            swiftSettings: shippedCode
        ),
        .target(name: "FuzzChecks", dependencies: ["Mux", "Crypto"]),
        .target(
            name: "Bench",
            dependencies: ["Mux", "Crypto", "CLinux", .product(name: "DequeModule", package: "swift-collections")],
            swiftSettings: shippedCode + optimizedForSize),
        .plugin(name: "BuildInfo", capability: .buildTool()),
        .executableTarget(
            name: "App",
            dependencies: [
                "Mux",
                "Crypto",
                "Bench",
                "CLinux",
                "CrashExit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: shippedCode + optimizedForSize,
            linkerSettings: [.unsafeFlags(smallRelease, .when(platforms: [.linux], configuration: .release))],
            plugins: ["BuildInfo"]
        ),
        .testTarget(name: "CryptoTests", dependencies: ["Crypto", "CSodium"]),
        .testTarget(name: "MuxTests", dependencies: ["Mux", "Crypto", "FuzzChecks"]),
        .testTarget(name: "AppTests", dependencies: ["App"]),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["Mux", "Crypto", "CLinux", .product(name: "Prometheus", package: "swift-prometheus")],
            // Captures the tests read by path (scripts/capture-browser-hello makes them).
            exclude: ["Fixtures"]),
        .testTarget(name: "BenchTests", dependencies: ["Bench", "Mux"]),
    ]
)

/// The targets linked into the `tcptunnel` binary use FoundationEssentials and Glibc, never the whole Foundation
/// (which brings its internationalization and ICU data: 45 MiB of binary and 10 MiB of memory). With
/// MemberImportVisibility a file sees only the members of the modules it imports itself, so one file importing
/// Foundation cannot quietly lend its APIs to the others; scripts/check-release checks the binary.
var shippedCode: [SwiftSetting] { [.enableUpcomingFeature("MemberImportVisibility")] }

/// Release builds of the modules whose speed does not show in the agents' throughput optimise for size: the
/// command line, the benchmark (its load is system calls and memcmp) and Crypto (thin wrappers around libsodium,
/// called once per 32 KiB frame). With issues 30-32 the binary had grown 92 KiB past issue 17's 16 MiB; this
/// takes 94 KiB off (App and Bench 90, Crypto 4), and in alternating runs neither the bench's direct route (its
/// own load alone), nor the framing rate, nor bulk through tcptunnel was slower.
var optimizedForSize: [SwiftSetting] { [.unsafeFlags(["-Osize"], .when(configuration: .release))] }

/// How a release binary is linked, for a small VPS (issue 17; each measured against the build without it):
/// - `--no-export-dynamic`: swiftc exports every symbol of an executable's own modules and packages (6,800 here),
///   which nothing looks up by name and which, exported, cannot be dropped as unused: 0.6 MB of binary.
/// - GNU ld with `-z pack-relative-relocs` (RELR; gold, swiftc's default linker, has none): the relative
///   relocations of a position-independent binary packed from 1 MB of table to 8 KB, which every agent read at
///   start: 1 MB of binary and 1 MB of an idle agent's memory. The binary then needs glibc 2.36 (Debian 12,
///   Ubuntu 24.04).
/// - The C++ runtime linked in, through the linker script in packaging/static-libstdc++ (swiftc names `-lstdc++`
///   before any flag of ours, so `-Bstatic` cannot reach it): 74 KB more binary, 0.85 MB less idle memory.
var smallRelease: [String] {
    [
        "-L\(Context.packageDirectory)/packaging/static-libstdc++", "-use-ld=bfd", "-Xlinker", "-z", "-Xlinker",
        "pack-relative-relocs", "-Xlinker", "--no-export-dynamic",
    ]
}
