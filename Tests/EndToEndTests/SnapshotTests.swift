import Foundation
import GuestMemory
import LinuxSystem
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
        #expect(reader.stateSections.sections.filter { $0.name.hasPrefix("vcpu.") }.count == 2)
        #expect(reader.configuration["machine"] != nil && reader.header.version == SnapshotLayout.formatVersion)

        var info = stat()
        stat(path, &info)
        #expect(Int(info.st_blocks) * 512 < 128 << 20, "zero pages should be holes; \(info.st_blocks * 512) bytes allocated")
        #expect(try TestKernel.ticks(process) > 0)  // resumed
    }

    /// A snapshot path that is not a regular file (or is the VM's own control socket, or holds a
    /// NUL) is refused with 400 and left as it was; the VM stays reachable and running.
    @Test func pathsThatAreNotRegularFilesAreRefusedOverTheAPI() throws {
        let socket = directory.path("own.sock")
        let (process, _) = try TestKernel.boot(extra: ["--api-socket", socket])
        defer { process.stop() }
        let fifo = directory.path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let target = directory.path("target")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: target))
        let link = directory.path("link")
        #expect(symlink(target, link) == 0)
        for (path, what) in [(socket, "socket"), (fifo, "FIFO"), (link, "symbolic link")] {
            let result = try runEngram(["snapshot", socket, path])
            #expect(result.status != 0 && result.errors.contains("HTTP 400") && result.errors.contains(what), "\(what): \(result.errors)")
        }
        let nul = try runEngram(["ctl", socket, "put", "/vm/snapshot", "--data", "{\"path\": \"\(directory.path("a"))\\u0000b.snap\"}"])
        #expect(nul.errors.contains("HTTP 400") && nul.errors.contains("NUL"), "\(nul.errors)")
        #expect(!FileManager.default.fileExists(atPath: directory.path("a")))
        #expect(FileStatus(path: fifo, followingLinks: false)?.kind == .fifo)
        #expect(FileStatus(path: link, followingLinks: false)?.kind == .symbolicLink)
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data([1, 2, 3]))
        #expect(try runEngram(["ctl", socket, "info"]).status == 0)
        #expect(try TestKernel.ticks(process) > 0)
    }

    /// The VMM killed with SIGKILL while its snapshot file is open for writing leaves nothing in
    /// the directory: the file is unnamed until it is complete. The kill is sent once
    /// /proc/PID/fd shows the VMM holding a file in that directory, so it lands mid-write.
    @Test func aWriterKilledMidWriteLeavesNothingBehind() throws {
        let work = TemporaryDirectory()
        let socket = directory.path("killed.sock")
        let (process, _) = try TestKernel.boot(memory: "1G", extra: ["--api-socket", socket])
        defer { process.kill() }
        try process.command("fill 512 5", expect: "FILL ")
        let client = try GuestProcess.engram(["snapshot", socket, work.path("vm.snap")])
        defer { client.kill() }
        let deadline = Date().addingTimeInterval(60)
        var caught = false
        while Date() < deadline && !caught && process.isRunning {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processID)/fd")) ?? []
            caught = fds.contains { fd in
                ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(process.processID)/fd/\(fd)")) ?? "")
                    .hasPrefix(work.url.path + "/")
            }
            if caught { process.kill() }
        }
        #expect(caught, "the VMM never held a file in the snapshot directory")
        #expect(try FileManager.default.contentsOfDirectory(atPath: work.url.path) == [])
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
        // Asked to stay paused after it, a snapshot that fails leaves the guest running as before.
        let failedPaused = try runEngram(["snapshot", socket, directory.path("no/such/dir/c.snap"), "--stay-paused"])
        #expect(failedPaused.status != 0 && failedPaused.errors.contains("HTTP 500"))
        #expect(try runEngram(["ctl", socket, "get", "/vm"]).output.contains("\"running\""), "the failed snapshot left the guest paused")
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
