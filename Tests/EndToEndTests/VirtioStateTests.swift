import Foundation
import LinuxSystem
import Testing
import TestSupport

/// Device state goes wherever memory goes: a disk write interrupted by a snapshot, a live update
/// or a migration finishes after it with nothing lost, and the devices keep working.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct VirtioStateTests {
    let directory = TemporaryDirectory()
    /// 128 MiB: long enough that a pause usually lands mid-write.
    static let sectors = 262_144
    static let write = "blk 0 write 0 \(sectors) 21"
    static let verify = "blk 0 verify 0 \(sectors) 21"

    private func makeDisk(_ name: String) throws -> String {
        let path = directory.path(name)
        FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingAtPath: path)!.truncate(atOffset: UInt64(Self.sectors) * 512)
        return path
    }

    private func ctl(_ socket: String, _ arguments: String...) throws {
        let result = try runEngram(["ctl", socket] + arguments)
        #expect(result.status == 0, "\(result.errors)")
    }

    /// The guest finishes the write it was in (or had finished), the disk holds all of it, and rng still answers.
    private func expectWriteCompletes(_ process: GuestProcess, after offset: Int = 0) throws {
        let line = try process.waitForLine(containing: "BLK WRITE", after: offset, timeout: 120)
        #expect(TestKernel.field("status", in: line) == "ok", "\(line)")
        #expect(try process.command(Self.verify, expect: "BLK VERIFY", timeout: 120).hasSuffix("ok"))
        #expect(try process.command("rng 1 256", expect: "RNG ").contains("bytes=256"))
    }

    @Test func aWriteCutBySnapshotFinishesAfterEveryKindOfRestore() throws {
        let disk = try makeDisk("disk.img")
        let socket = directory.path("vm.sock"), snapshot = directory.path("vm.snap")
        let (source, _) = try TestKernel.boot(extra: ["--disk", disk, "--rng", "on", "--api-socket", socket])
        defer { source.stop() }
        source.send(Self.write + "\r")
        try ctl(socket, "pause")
        let taken = try runEngram(["snapshot", socket, snapshot])
        #expect(taken.status == 0, "\(taken.errors)")
        // The disk as it was at the snapshot: what each restored guest continues from.
        let atSnapshot = try Data(contentsOf: URL(fileURLWithPath: disk))
        source.kill()
        for mode in ["map", "copy", "lazy"] {
            let copy = directory.path("disk-\(mode).img")
            try atSnapshot.write(to: URL(fileURLWithPath: copy))
            let restored = try GuestProcess.engram(["restore", snapshot, "--memory", mode, "--disk", copy])
            defer { restored.stop() }
            try expectWriteCompletes(restored)
            #expect(try Data(contentsOf: URL(fileURLWithPath: disk)) == atSnapshot, "\(mode): the original disk is untouched")
        }
    }

    @Test func aRestoreRefusesADiskOfAnotherSize() throws {
        let disk = try makeDisk("disk.img")
        let socket = directory.path("vm.sock"), snapshot = directory.path("vm.snap")
        let (source, _) = try TestKernel.boot(extra: ["--disk", disk, "--api-socket", socket])
        defer { source.stop() }
        #expect(try runEngram(["snapshot", socket, snapshot]).status == 0)
        let small = directory.path("small.img")
        FileManager.default.createFile(atPath: small, contents: Data(count: 4096))
        let result = try runEngram(["restore", snapshot, "--disk", small])
        #expect(result.status != 0)
        #expect(result.errors.contains("disk \(small): holds 4096 bytes; the saved guest's disk blk0 had \(Self.sectors * 512)"), "\(result.errors)")
        let missing = try runEngram(["restore", snapshot, "--disk", directory.path("none.img")])
        #expect(missing.status != 0 && missing.errors.contains("no such file"), "\(missing.errors)")
    }

    /// The image stays open across exec: renamed just before the update, it is still the one served.
    @Test func aWriteCutByLiveUpdateFinishesOnTheSameOpenImage() throws {
        let disk = try makeDisk("disk.img")
        let socket = directory.path("vm.sock")
        let (process, _) = try TestKernel.boot(extra: ["--disk", disk, "--rng", "on", "--api-socket", socket])
        defer { process.stop() }
        let offset = process.consoleText.utf8.count
        process.send(Self.write + "\r")
        let moved = directory.path("moved.img")
        try FileManager.default.moveItem(atPath: disk, toPath: moved)
        let result = try runEngram(["update", socket])
        #expect(result.status == 0, "\(result.errors)")
        try expectWriteCompletes(process, after: offset)
        #expect(!FileManager.default.fileExists(atPath: disk), "nothing reopened the old path")
        #expect(try Data.read(moved, offset: 0, count: 4096) != Data(count: 4096), "the guest's data is in the image it had open")
    }

    @Test(.enabled(if: NetworkNamespacePair.available, "needs ip netns"))
    func aWriteCutByMigrationFinishesOnTheDestination() throws {
        let pair = try MigrationPair(directory: directory)
        defer { pair.shutDown() }
        let disk = try makeDisk("disk.img")
        let (source, socket) = try pair.source("src", extra: ["--disk", disk, "--rng", "on"])
        let (destination, url) = try pair.receive()
        source.send(Self.write + "\r")
        let migration = try pair.migrate(socket, to: url, mode: "precopy")
        #expect(migration.status == 0, "\(migration.errors)")
        try expectWriteCompletes(destination)
    }
}

/// vsock across a snapshot: the guest's listener survives a restore, connections that were open
/// are reset (the host ends stayed with the old VMM), and a clone takes its own socket.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct VsockStateTests {
    let directory = TemporaryDirectory()

    private func connect(_ path: String, port: UInt32) throws -> (StreamSocket, String?) {
        let client = try StreamSocket.connect(unixPath: path)
        client.setReceiveTimeout(milliseconds: 10_000)
        try client.send(Array("CONNECT \(port)\n".utf8))
        return (client, try VirtioVsockTests.readLine(client))
    }

    @Test func aListenerSurvivesRestoreAndOpenConnectionsAreReset() throws {
        let original = directory.path("v.sock"), clone = directory.path("clone.sock")
        let socket = directory.path("vm.sock"), snapshot = directory.path("vm.snap")
        let (source, _) = try TestKernel.boot(extra: ["--vsock", "3,\(original)", "--api-socket", socket])
        defer { source.stop() }
        _ = try source.command("vsock listen 5000", expect: "VSOCK LISTEN")
        let (open, answer) = try connect(original, port: 5000)
        #expect(answer?.hasPrefix("OK ") == true, "\(answer ?? "nil")")
        let bytes = VirtioVsockTests.pattern(4096, seed: 1)
        #expect(try VirtioVsockTests.echo(open, bytes) == bytes)
        let taken = try runEngram(["snapshot", socket, snapshot])
        #expect(taken.status == 0, "\(taken.errors)")

        // The original still runs and owns its socket: the clone must take another.
        let refused = try runEngram(["restore", snapshot], timeout: 30)
        #expect(refused.status != 0 && refused.errors.contains("another process listens on it"), "\(refused.errors)")
        let restored = try GuestProcess.engram(["restore", snapshot, "--vsock", "3,\(clone)"])
        defer { restored.stop() }
        _ = try restored.waitForErrorLine(containing: "restored")
        let (fresh, freshAnswer) = try connect(clone, port: 5000)
        #expect(freshAnswer?.hasPrefix("OK ") == true, "the guest's listener survived: \(freshAnswer ?? "nil")")
        let more = VirtioVsockTests.pattern(65536, seed: 2)
        #expect(try VirtioVsockTests.echo(fresh, more) == more)
        let stats = try restored.command("vsock stats", expect: "VSOCK STATS")
        #expect(TestKernel.field("transport_resets", in: stats) == "1", "\(stats)")
        // The original's connection is untouched by the clone.
        #expect(try VirtioVsockTests.echo(open, bytes) == bytes)
    }
}
