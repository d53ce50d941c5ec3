import SnapshotTestSupport
import Foundation
import Glibc
import Inspect
import SnapshotFormat
import Testing
import TestSupport

/// A raw export is guest-physical memory byte for byte, holes and all, mode 0600 and sparse.
@Suite struct RawExportTests {
    let directory = TemporaryDirectory()

    @Test func exportIsFlatPhysicalMemory() throws {
        let memory = try InspectFixtures.memory { region, page in
            region == "high" && page == 2 || region == "ram" && page == 7 ? InspectFixtures.pageBytes(page) : nil
        }
        let snapshot = directory.path("m.snap")
        try SnapshotWriter.writeFull(memory: memory, state: [], to: snapshot)
        let output = directory.path("out.raw")
        let summary = try RawExporter.write(try MemoryImage.snapshot(path: snapshot), to: output)
        #expect(summary.sizeInBytes == (1 << 32) + 64 * 4096)
        #expect(summary.writtenBytes == 2 * 4096)

        var status = stat()
        #expect(stat(output, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)
        #expect(status.st_blocks * 512 < 1 << 20)   // sparse: about two pages on disk

        let flat = try MemoryImage.raw(path: output, layout: .flat)
        #expect(try flat.readPhysical(7 * 4096, count: 4096) == InspectFixtures.pageBytes(7))
        #expect(try flat.readPhysical((1 << 32) + 2 * 4096, count: 4096) == InspectFixtures.pageBytes(2))
        #expect(try flat.readPhysical(1 << 31, count: 8) == [UInt8](repeating: 0, count: 8))
        #expect(!FileManager.default.fileExists(atPath: output + ".partial-\(getpid())"))
    }
}
