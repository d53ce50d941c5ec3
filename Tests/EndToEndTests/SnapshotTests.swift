import Foundation
import GuestMemory
import SnapshotFormat
import Testing
import TestSupport

/// `engram snapshot` on a running test kernel: a valid, sparse file holding its memory and state.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct SnapshotTests {
    let directory = TemporaryDirectory()

    @Test func snapshotOfARunningGuestHoldsItsMemoryAndTheGuestRunsOn() throws {
        let socket = directory.path("api.sock")
        let path = directory.path("vm.snap")
        let (process, _) = try TestKernel.boot(cpus: 2, extra: ["--api-socket", socket])
        defer { process.stop() }
        try process.command("fill 16 9", expect: "FILL ")
        let (tag, address) = try TestKernel.writeTag(process)

        let result = try runEngram(["snapshot", socket, path])
        #expect(result.status == 0, "\(result.errors)")
        let report = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        #expect(report?["state"] as? String == "running")
        #expect((report?["pages_written"] as? Int ?? 0) > 4096)  // the 16 MiB fill at least
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect(attributes[.posixPermissions] as? Int == 0o600)

        let reader = try SnapshotReader(path: path)
        try reader.verifyAllPages()
        let ram = try #require(reader.region(named: "ram"))
        let page = try reader.readPage(ram, page: PageIndex(address / 4096))
        let offset = Int(address % 4096)
        #expect(Array(page[offset..<(offset + tag.utf8.count)]) == Array(tag.utf8))
        let state = try JSONSerialization.jsonObject(with: Data(reader.state)) as? [String: Any]
        #expect((state?["vcpus"] as? [Any])?.count == 2)

        var info = stat()
        stat(path, &info)
        #expect(Int(info.st_blocks) * 512 < 128 << 20, "zero pages should be holes; \(info.st_blocks * 512) bytes allocated")
        #expect(try TestKernel.ticks(process) > 0)  // resumed
    }

    @Test func stayPausedAndBadRequestsAreRefusedCleanly() throws {
        let socket = directory.path("api.sock")
        let (process, _) = try TestKernel.boot(extra: ["--api-socket", socket])
        defer { process.stop() }
        let paused = try runEngram(["snapshot", socket, directory.path("a.snap"), "--stay-paused"])
        let report = try JSONSerialization.jsonObject(with: Data(paused.output.utf8)) as? [String: Any]
        #expect(report?["state"] as? String == "paused")
        #expect(try runEngram(["ctl", socket, "resume"]).status == 0)
        let missingDirectory = try runEngram(["snapshot", socket, directory.path("no/such/dir/b.snap")])
        #expect(missingDirectory.status != 0 && missingDirectory.errors.contains("HTTP 500"))
        #expect(!FileManager.default.fileExists(atPath: directory.path("no/such/dir/b.snap")))
        let diff = try runEngram(["ctl", socket, "put", "/vm/snapshot", "--data", "{\"path\": \"/tmp/x.snap\", \"kind\": \"diff\"}"])
        #expect(diff.errors.contains("HTTP 400"))
        #expect(try TestKernel.ticks(process) > 0)  // still running after the failures
    }

    /// A snapshot that runs out of disk half-way leaves no file (not even the temporary one)
    /// and the guest running.
    @Test func fullDiskLeavesNoSnapshotAndTheGuestRuns() throws {
        let mount = directory.path("small-fs")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let mounted = try Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", mount])
        try #require(mounted == 0, "cannot mount a small tmpfs")
        defer { _ = try? Self.run("/bin/umount", [mount]) }
        let socket = directory.path("full.sock")
        let (process, _) = try TestKernel.boot(extra: ["--api-socket", socket])
        defer { process.stop() }
        try process.command("fill 16 4", expect: "FILL ")
        let result = try runEngram(["snapshot", socket, mount + "/vm.snap"])
        #expect(result.status != 0)
        #expect(result.errors.contains("No space left on device"), "\(result.errors)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: mount).isEmpty)
        let ticks = try TestKernel.ticks(process)
        #expect(try TestKernel.ticks(process) >= ticks)
        #expect(try process.command("digest", expect: "DIGEST ").contains("mib=16"))
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
