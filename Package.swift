// swift-tools-version: 6.2
// Engram: a KVM virtual machine monitor whose guest memory is a first-class file.
import PackageDescription

/// Targets that may touch raw pointers: every `unsafe` expression is marked and explained.
let pointerTargetSettings: [SwiftSetting] = [
    .strictMemorySafety(),
]

/// Targets that must stay pointer-free: a raw pointer there fails the build.
let safeTargetSettings: [SwiftSetting] = [
    .strictMemorySafety(),
    .treatWarning("StrictMemorySafety", as: .error),
]

let package = Package(
    name: "Engram",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "engram", targets: ["engram"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // The C shim is small and sees raw pointers: every warning is an error.
        .target(name: "CLinux", cSettings: [.unsafeFlags(["-Wall", "-Wextra", "-Wshadow", "-Wconversion", "-Werror"])]),
        // TLS 1.3 glue over the system's OpenSSL (libssl-dev): held to the same warnings.
        .target(
            name: "CTLS",
            cSettings: [.unsafeFlags(["-Wall", "-Wextra", "-Wshadow", "-Wconversion", "-Werror"])],
            linkerSettings: [
                .linkedLibrary("ssl", .when(configuration: .debug)), .linkedLibrary("crypto", .when(configuration: .debug)),
                // A release binary carries OpenSSL (libssl-dev's archives): every process start would
                // otherwise bind libcrypto's thousands of symbols (about 1 ms of each spawn here). An
                // OpenSSL security update then needs a rebuild, as for any static binary.
                .unsafeFlags(["-Xlinker", "-l:libssl.a", "-Xlinker", "-l:libcrypto.a"], .when(configuration: .release)),
            ]
        ),
        .systemLibrary(name: "CLZMA", pkgConfig: "liblzma", providers: [.apt(["liblzma-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "LinuxSystem",
            dependencies: ["CLinux", "CLZMA", "CZlib", "CTLS", .product(name: "SystemPackage", package: "swift-system")],
            exclude: ["README.md"],
            swiftSettings: pointerTargetSettings
        ),
        .target(
            name: "GuestMemory",
            dependencies: ["CLinux", "LinuxSystem", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: pointerTargetSettings
        ),
        .target(
            name: "SnapshotFormat",
            dependencies: ["LinuxSystem", "GuestMemory", .product(name: "SystemPackage", package: "swift-system")],
            exclude: ["README.md"],
            swiftSettings: safeTargetSettings
        ),
        .target(
            name: "KVM",
            dependencies: ["LinuxSystem", "CLinux", "GuestMemory", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: pointerTargetSettings
        ),
        .target(
            name: "Devices",
            dependencies: ["LinuxSystem", "GuestMemory"],
            exclude: ["README.md"],
            swiftSettings: safeTargetSettings
        ),
        .target(
            name: "Paging",
            dependencies: [
                "LinuxSystem",
                "CLinux", "GuestMemory", "SnapshotFormat",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: safeTargetSettings
        ),
        .target(
            name: "Transport",
            dependencies: [
                "LinuxSystem",
                "CLinux", "GuestMemory", "SnapshotFormat", "Paging",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            exclude: ["README.md"],
            swiftSettings: safeTargetSettings
        ),
        .target(
            name: "Machine",
            dependencies: ["LinuxSystem", "CLinux", "KVM", "Devices", "GuestMemory", "SnapshotFormat", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: safeTargetSettings
        ),
        .target(
            name: "Migration",
            dependencies: ["LinuxSystem", "CLinux", "Devices", "GuestMemory", "Machine", "Paging", "SnapshotFormat", "Transport", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: safeTargetSettings
        ),
        .target(
            name: "Inspect",
            dependencies: ["LinuxSystem", "CLinux", "GuestMemory", "SnapshotFormat", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: safeTargetSettings
        ),
        .target(
            name: "Display",
            dependencies: ["LinuxSystem", "Devices", .product(name: "SystemPackage", package: "swift-system")],
            exclude: ["README.md"],
            swiftSettings: safeTargetSettings
        ),
        .target(
            name: "ControlAPI",
            dependencies: [
                "LinuxSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            exclude: ["README.md"],
            swiftSettings: safeTargetSettings
        ),
        .target(
            name: "VMM",
            dependencies: [
                "LinuxSystem", "ControlAPI", "Devices", "Display", "GuestMemory", "Inspect", "Machine", "Migration", "ObjectStore", "Paging",
                "SnapshotFormat", "Transport",
            ],
            exclude: ["README.md"],
            swiftSettings: safeTargetSettings
        ),
        .executableTarget(
            name: "engram",
            dependencies: [
                "LinuxSystem", "VMM",
                "Machine", "Migration", "ControlAPI", "Devices", "Display", "GuestMemory", "Inspect", "KVM", "ObjectStore", "Paging", "SnapshotFormat", "Transport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: safeTargetSettings,
            // The static Swift runtime exports every symbol by default (39,000 here), which the
            // dynamic loader searches for each shared library's symbols at every start; nothing
            // looks Engram's own symbols up, so a release binary exports none.
            linkerSettings: [.unsafeFlags(["-Xlinker", "--no-export-dynamic"], .when(configuration: .release))]
        ),
        .target(
            name: "ObjectStore",
            dependencies: [
                "LinuxSystem",
                "Paging", "Transport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: safeTargetSettings
        ),
        // Every parser of outside input as a function of bytes, for libFuzzer (engram-fuzz,
        // scripts/fuzz.sh) and for the regression test that replays Fuzz/.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "LinuxSystem", "ControlAPI", "Devices", "Display", "GuestMemory", "Inspect", "Machine", "ObjectStore", "Paging", "SnapshotFormat",
                "Transport", "TestSupport", .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: safeTargetSettings
        ),
        // Built with -sanitize=fuzzer (and -DFUZZING) by scripts/fuzz.sh; in a normal build it replays
        // inputs and writes the seed corpus. A pointer target only for libFuzzer's entry points,
        // which hand it raw bytes and argv (docs/ARCHITECTURE.md).
        .executableTarget(
            name: "engram-fuzz", dependencies: ["FuzzTargets", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: pointerTargetSettings
        ),
        .target(name: "TestSupport", dependencies: ["LinuxSystem"], path: "Tests/TestSupport"),
        .target(name: "SnapshotTestSupport", dependencies: ["SnapshotFormat", "GuestMemory", "LinuxSystem"], path: "Tests/SnapshotTestSupport"),
        .testTarget(name: "LinuxSystemTests", dependencies: ["LinuxSystem", "TestSupport"]),
        .testTarget(name: "GuestMemoryTests", dependencies: ["LinuxSystem", "GuestMemory", "TestSupport"]),
        .testTarget(name: "SnapshotFormatTests", dependencies: ["SnapshotTestSupport", "LinuxSystem", "SnapshotFormat", "GuestMemory", "TestSupport"]),
        .testTarget(name: "KVMTests", dependencies: ["LinuxSystem", "KVM", "GuestMemory", "TestSupport"]),
        .testTarget(name: "DevicesTests", dependencies: ["LinuxSystem", "Devices", "GuestMemory", "TestSupport"]),
        .testTarget(name: "DisplayTests", dependencies: ["LinuxSystem", "Display", "Devices", "CZlib", "TestSupport"]),
        .testTarget(name: "PagingTests", dependencies: ["SnapshotTestSupport", "LinuxSystem", "Paging", "SnapshotFormat", "GuestMemory", "TestSupport"]),
        .testTarget(name: "TransportTests", dependencies: ["SnapshotTestSupport", "LinuxSystem", "Transport", "Paging", "SnapshotFormat", "GuestMemory", "TestSupport"]),
        .testTarget(name: "InspectTests", dependencies: ["SnapshotTestSupport", "LinuxSystem", "Inspect", "SnapshotFormat", "GuestMemory", "TestSupport"]),
        .testTarget(name: "MachineTests", dependencies: ["LinuxSystem", "Devices", "Machine", "SnapshotFormat", "GuestMemory", "TestSupport"]),
        .testTarget(name: "MigrationTests", dependencies: ["LinuxSystem", "Migration", "Machine", "GuestMemory", "Paging", "Transport", "TestSupport"]),
        .testTarget(
            name: "ControlAPITests",
            dependencies: [
                "ControlAPI", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "ObjectStoreTests", dependencies: ["SnapshotTestSupport", "LinuxSystem", "ObjectStore", "Paging", "SnapshotFormat", "GuestMemory", "TestSupport"]),
        .testTarget(name: "EngramTests", dependencies: ["engram"]),
        .testTarget(name: "FuzzTargetsTests", dependencies: ["FuzzTargets", "TestSupport"]),
        .testTarget(name: "VMMTests", dependencies: ["SnapshotTestSupport", "VMM", "Machine", "Paging", "SnapshotFormat", "GuestMemory", "LinuxSystem", "TestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["TestSupport", "SnapshotTestSupport", "SnapshotFormat", "GuestMemory", "LinuxSystem"]),
    ]
)
