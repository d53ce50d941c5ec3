import Foundation
import Testing
import TestSupport

/// Damaged, foreign or incompatible snapshots are refused before the guest runs: one line, non-zero exit.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct RestoreRefusalTests {
    static let directory = TemporaryDirectory()
    /// One good snapshot shared by the tests (they copy and damage it).
    static let good: Result<String, any Error> = Result {
        let path = directory.path("good.snap")
        let socket = directory.path("api.sock")
        let (process, _) = try TestKernel.boot(cpus: 2, extra: ["--api-socket", socket])
        defer { process.stop() }
        _ = try process.command("fill 8 3", expect: "FILL ")
        let result = try runEngram(["snapshot", socket, path, "--stay-paused"])
        guard result.status == 0 else { throw GuestProcess.Timeout(description: "snapshot failed: \(result.errors)") }
        return path
    }

    /// Runs `engram restore` on `path` and checks it fails with one line containing `expected`.
    func expectRefusal(_ path: String, mode: String = "copy", extra: [String] = [], _ expected: String,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try runEngram(["restore", path, "--memory", mode] + extra)
        #expect(result.status != 0, "restore of a bad snapshot succeeded", sourceLocation: sourceLocation)
        let lines = result.errors.split(separator: "\n")
        #expect(lines.count == 1, "expected one line, got: \(result.errors)", sourceLocation: sourceLocation)
        #expect(result.errors.contains(expected), "\(result.errors)", sourceLocation: sourceLocation)
        #expect(!result.output.contains("READY") && !result.output.contains("TICK"), sourceLocation: sourceLocation)
    }

    func damaged(_ name: String, _ edit: (inout [UInt8]) -> Void) throws -> String {
        var bytes = try SnapshotSurgery.read(try Self.good.get())
        edit(&bytes)
        let path = Self.directory.path(name)
        try SnapshotSurgery.write(bytes, to: path)
        return path
    }

    @Test func missingAndNotASnapshot() throws {
        try expectRefusal(Self.directory.path("absent.snap"), "No such file")
        let text = Self.directory.path("text.snap")
        try Data(String(repeating: "not a snapshot\n", count: 400).utf8).write(to: URL(fileURLWithPath: text))
        try expectRefusal(text, "is not an Engram snapshot")
    }

    @Test func truncatedSnapshotIsRefused() throws {
        defer { Self.directory.remove("truncated.snap") }
        let path = try damaged("truncated.snap") { $0 = Array($0.prefix($0.count / 2)) }
        for mode in ["copy", "map", "lazy"] { try expectRefusal(path, mode: mode, "outside the") }
    }

    @Test func corruptedPageIsRefused() throws {
        // The first stored page of ram sits at the page area's start or after it; find one that is not zero.
        defer { Self.directory.remove("corrupt.snap") }
        let path = try damaged("corrupt.snap") { bytes in
            let pagesOffset = Int(SnapshotSurgery.u64(bytes, 512 + 208))
            let stored = stride(from: pagesOffset, to: bytes.count - 4096, by: 4096).first { offset in
                bytes[offset..<offset + 4096].contains { $0 != 0 }
            }!
            bytes[stored + 100] ^= 0x5A
        }
        try expectRefusal(path, mode: "copy", "is corrupt: CRC32C")
        try expectRefusal(path, mode: "map", extra: ["--verify"], "is corrupt: CRC32C")
        try expectRefusal(path, mode: "lazy", extra: ["--verify"], "is corrupt: CRC32C")
        // Without --verify a lazy restore starts, and stops the VM when it meets the page
        // (here the background fill does), rather than give the guest wrong memory.
        let lazy = try runEngram(["restore", path, "--memory", "lazy"])
        #expect(lazy.status == 1)
        #expect(lazy.errors.contains("guest memory failed; the VM is stopped") && lazy.errors.contains("is corrupt"), "\(lazy.errors)")
    }

    @Test func newerFormatVersionIsRefused() throws {
        defer { Self.directory.remove("newer.snap") }
        let path = try damaged("newer.snap") { bytes in
            SnapshotSurgery.put32(3, &bytes, 8)
            SnapshotSurgery.resealHeader(&bytes)
        }
        try expectRefusal(path, "written by a newer Engram (format version 3)")
    }

    @Test func newerStateVersionIsRefused() throws {
        let path = Self.directory.path("state-version.snap")
        defer { Self.directory.remove("state-version.snap") }
        try SnapshotSurgery.editSection("serial", of: try Self.good.get(), writingTo: path, version: 7)
        try expectRefusal(path, mode: "map", "section serial is version 7; this Engram reads up to version 1")
    }

    @Test func stateThatDoesNotDecodeIsRefused() throws {
        let path = Self.directory.path("state-broken.snap")
        defer { Self.directory.remove("state-broken.snap") }
        try SnapshotSurgery.editSection("vcpu.0", of: try Self.good.get(), writingTo: path) { $0["cpuid"] = "none" }
        try expectRefusal(path, mode: "map", "section vcpu.0 does not decode: cpuid")
    }

    @Test func wrongConfigurationIsRefused() throws {
        let good = try Self.good.get()
        let cpus = Self.directory.path("cpus.snap")
        defer { Self.directory.remove("cpus.snap") }
        try SnapshotSurgery.editSection("machine", of: good, writingTo: cpus) { $0["cpuCount"] = 3 }
        try expectRefusal(cpus, mode: "map", "saved state holds 2 vCPUs but its configuration says 3")

        let size = Self.directory.path("size.snap")
        defer { Self.directory.remove("size.snap") }
        try SnapshotSurgery.editSection("machine", of: good, writingTo: size) { $0["memorySizeInBytes"] = String(1 << 30) }
        try expectRefusal(size, mode: "map", "does not match the saved memory size 1073741824")

        let region = Self.directory.path("region.snap")
        defer { Self.directory.remove("region.snap") }
        try SnapshotSurgery.editSection("machine", of: good, writingTo: region) { $0["regionNames"] = ["ram", "vram"] }
        try expectRefusal(region, mode: "map", "region vram; this Engram knows ram")

        let features = Self.directory.path("features.snap")
        defer { Self.directory.remove("features.snap") }
        try SnapshotSurgery.editSection("vcpu.0", of: good, writingTo: features) { vcpu in
            // kvm_cpuid_entry2 structs, 40 bytes each: function, index, flags, eax, ebx, …
            var cpuid = Array(Data(base64Encoded: vcpu["cpuid"] as! String)!)
            let leaf = stride(from: 0, to: cpuid.count, by: 40).first { SnapshotSurgery.u32(cpuid, $0) == 7 && SnapshotSurgery.u32(cpuid, $0 + 4) == 0 }!
            for byte in 0..<4 { cpuid[leaf + 16 + byte] = 0xFF }
            vcpu["cpuid"] = Data(cpuid).base64EncodedString()
        }
        try expectRefusal(features, mode: "map", "snapshot needs CPU features this host lacks: vCPU 0 CPUID leaf 0x7.0 ebx")
        // A copy restore refuses it before reading memory: a damaged page behind it is never reached.
        var bytes = try SnapshotSurgery.read(features)
        let pagesOffset = Int(SnapshotSurgery.u64(bytes, 512 + 208))
        let stored = try #require(stride(from: pagesOffset, to: bytes.count - 4096, by: 4096).first { bytes[$0..<$0 + 4096].contains { $0 != 0 } })
        bytes[stored + 100] ^= 0x5A
        try SnapshotSurgery.write(bytes, to: features)
        try expectRefusal(features, mode: "copy", "snapshot needs CPU features this host lacks")
    }

    /// Random damage to the header, region table and state sections, without fixing CRCs: every
    /// file is refused with one clear line, in every mode.
    @Test func randomDamageIsAlwaysRefusedCleanly() throws {
        let original = try SnapshotSurgery.read(try Self.good.get())
        let stateOffset = Int(SnapshotSurgery.u64(original, 288))
        let targets = [0..<736, stateOffset..<original.count]
        var generator = SystemRandomNumberGenerator()
        for iteration in 0..<12 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let target = targets[Int.random(in: 0..<targets.count, using: &generator)]
                bytes[Int.random(in: target, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
            }
            let path = Self.directory.path("random-\(iteration).snap")
            try SnapshotSurgery.write(bytes, to: path)
            try expectRefusal(path, mode: ["copy", "map", "lazy"][iteration % 3], path)
            Self.directory.remove("random-\(iteration).snap")
        }
    }
}
