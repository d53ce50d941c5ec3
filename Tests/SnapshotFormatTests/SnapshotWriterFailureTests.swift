import SnapshotTestSupport
import Glibc
import GuestMemory
import SnapshotFormat
import Testing
import TestSupport

@Suite(.serialized) struct SnapshotWriterFailureTests {
    let directory = TemporaryDirectory()

    @Test func missingDirectoryThrowsAndLeavesNothing() throws {
        let memory = try SnapshotFixtures.memory(ramPages: 16, highPages: 16)
        let path = directory.path("absent/deeper/x.snap")
        #expect {
            try SnapshotWriter.writeFull(memory: memory, state: [], to: path)
        } throws: { error in
            guard let error = error as? SnapshotFormatError, case .systemCall(_, let call, ENOENT) = error, call.hasPrefix("open") else { return false }
            return error.description.contains("absent/deeper")
        }
        #expect(SnapshotFixtures.directoryEntries(directory.url.path).isEmpty)
    }

    /// A 1 MiB tmpfs fills up mid-write: the temp file is removed and the old snapshot at PATH survives.
    @Test(.enabled(if: getuid() == 0, "mounting tmpfs needs root"))
    func fullFileSystemRemovesTheTemporaryFileAndKeepsTheOldSnapshot() throws {
        let mountPoint = directory.path("tiny")
        #expect(mkdir(mountPoint, 0o700) == 0)
        guard mount("tmpfs", mountPoint, "tmpfs", 0, "size=1m") == 0 else {
            Issue.record("mount tmpfs failed: errno \(errno)")
            return
        }
        defer { umount2(mountPoint, 0) }
        let path = mountPoint + "/vm.snap"
        SnapshotFixtures.patch(path: path, creating: Array("old snapshot".utf8))

        let region = try GuestRegion(name: "ram", sizeInBytes: 4 << 20, backing: .memfd)
        for page in 0..<UInt64(1024) { try region.write([UInt8](repeating: 0xA5, count: 4096), at: RegionOffset(page * 4096)) }
        let memory = GuestMemoryMap(regions: [region], mappings: [])
        #expect {
            try SnapshotWriter.writeFull(memory: memory, state: [], to: path)
        } throws: { error in
            guard let error = error as? SnapshotFormatError, case .systemCall(_, _, ENOSPC) = error else { return false }
            return true
        }
        #expect(SnapshotFixtures.directoryEntries(mountPoint) == ["vm.snap"])
        #expect(SnapshotFixtures.bytes(path, at: 0, count: 12) == Array("old snapshot".utf8))
    }
}

extension SnapshotFixtures {
    /// Creates `path` holding `bytes`.
    static func patch(path: String, creating bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        precondition(fd >= 0, "create \(path)")
        close(fd)
        patch(path, at: 0, bytes)
    }
}
