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
        .target(name: "CLinux"),
        .systemLibrary(name: "CLZMA", pkgConfig: "liblzma", providers: [.apt(["liblzma-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "GuestMemory",
            dependencies: ["CLinux", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: pointerTargetSettings
        ),
        .target(
            name: "SnapshotFormat",
            dependencies: ["GuestMemory"],
            exclude: ["README.md"],
            swiftSettings: pointerTargetSettings
        ),
        .target(
            name: "KVM",
            dependencies: ["CLinux", "GuestMemory", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: pointerTargetSettings
        ),
        .target(
            name: "Devices",
            dependencies: ["GuestMemory"],
            exclude: ["README.md"],
            swiftSettings: safeTargetSettings
        ),
        .target(
            name: "Paging",
            dependencies: [
                "CLinux", "GuestMemory", "SnapshotFormat",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: pointerTargetSettings
        ),
        .target(
            name: "Transport",
            dependencies: [
                "CLinux", "GuestMemory", "SnapshotFormat", "Paging",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            exclude: ["README.md"],
            swiftSettings: pointerTargetSettings
        ),
        .target(
            name: "Machine",
            dependencies: ["CLinux", "CLZMA", "KVM", "Devices", "GuestMemory", "SnapshotFormat", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: pointerTargetSettings
        ),
        .target(
            name: "Migration",
            dependencies: ["CLinux", "GuestMemory", "Machine", "Paging", "SnapshotFormat", "Transport", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: pointerTargetSettings
        ),
        .target(
            name: "Inspect",
            dependencies: ["CLinux", "GuestMemory", "SnapshotFormat"],
            swiftSettings: pointerTargetSettings
        ),
        .target(
            name: "Display",
            dependencies: ["CLinux", "CZlib", "Devices", "GuestMemory", .product(name: "SystemPackage", package: "swift-system")],
            exclude: ["README.md"],
            swiftSettings: pointerTargetSettings
        ),
        .target(
            name: "ControlAPI",
            dependencies: [
                "CLinux",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            exclude: ["README.md"],
            swiftSettings: safeTargetSettings
        ),
        .executableTarget(
            name: "engram",
            dependencies: [
                "Machine", "Migration", "ControlAPI", "Devices", "Display", "GuestMemory", "Inspect", "KVM", "ObjectStore", "Paging", "SnapshotFormat", "Transport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: safeTargetSettings
        ),
        .target(
            name: "ObjectStore",
            dependencies: [
                "Paging", "Transport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: pointerTargetSettings
        ),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "GuestMemoryTests", dependencies: ["GuestMemory", "TestSupport"]),
        .testTarget(name: "SnapshotFormatTests", dependencies: ["SnapshotFormat", "GuestMemory", "TestSupport"]),
        .testTarget(name: "KVMTests", dependencies: ["KVM", "GuestMemory", "TestSupport"]),
        .testTarget(name: "DevicesTests", dependencies: ["Devices"]),
        .testTarget(name: "DisplayTests", dependencies: ["Display", "Devices", "CZlib", "TestSupport"]),
        .testTarget(name: "PagingTests", dependencies: ["Paging", "SnapshotFormat", "GuestMemory", "TestSupport"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "Paging", "SnapshotFormat", "GuestMemory", "TestSupport"]),
        .testTarget(name: "InspectTests", dependencies: ["Inspect", "SnapshotFormat", "GuestMemory", "TestSupport"]),
        .testTarget(name: "MachineTests", dependencies: ["Machine", "GuestMemory", "TestSupport"]),
        .testTarget(name: "MigrationTests", dependencies: ["Migration", "Machine", "GuestMemory", "Paging", "Transport", "TestSupport"]),
        .testTarget(
            name: "ControlAPITests",
            dependencies: [
                "ControlAPI", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "ObjectStoreTests", dependencies: ["ObjectStore", "Paging", "SnapshotFormat", "GuestMemory", "TestSupport"]),
        .testTarget(name: "EngramTests", dependencies: ["engram"]),
        .testTarget(name: "EndToEndTests", dependencies: ["TestSupport", "SnapshotFormat", "GuestMemory"]),
    ]
)
