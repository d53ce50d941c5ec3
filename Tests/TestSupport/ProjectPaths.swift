import Foundation

/// Where the project's built artifacts are, found from this file's location in the repository.
public enum ProjectPaths {
    /// The repository root (two levels above Tests/TestSupport).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The engram binary: $ENGRAM_BINARY, or the debug build beside the tests.
    public static var engram: String {
        if let override = ProcessInfo.processInfo.environment["ENGRAM_BINARY"] { return override }
        return root.appendingPathComponent(".build/debug/engram").path
    }

    /// The test kernel built by `make -C guest`.
    public static var testKernel: String { root.appendingPathComponent("guest/build/engram-test-kernel.elf").path }

    /// Debian's stock kernel and the busybox initramfs built by guest/linux/build-image.sh.
    public static var linuxKernel: String { root.appendingPathComponent("guest/linux/build/bzImage").path }
    public static var linuxInitramfs: String { root.appendingPathComponent("guest/linux/build/initramfs.cpio.gz").path }
}

/// What the machine running the tests offers.
public enum TestEnvironment {
    /// /dev/kvm exists and this user may open it; KVM tests skip (with a message) otherwise.
    public static var hasKVM: Bool { access("/dev/kvm", R_OK | W_OK) == 0 }

    public static var hasTestKernel: Bool { FileManager.default.fileExists(atPath: ProjectPaths.testKernel) }
    public static var hasLinuxImage: Bool {
        FileManager.default.fileExists(atPath: ProjectPaths.linuxKernel) && FileManager.default.fileExists(atPath: ProjectPaths.linuxInitramfs)
    }
}
