import SnapshotTestSupport
import Glibc
import GuestMemory
import SnapshotFormat
import Testing
import TestSupport

/// `SnapshotMerger`: a chain becomes one full snapshot that reads exactly as the chain does.
@Suite struct SnapshotMergeTests {
    let directory = TemporaryDirectory()

    @Test func mergedFileIsAFullSnapshotEqualToTheComposedChain() throws {
        let fixture = try SnapshotChainFixture(in: directory)
        let output = directory.path("merged.snap")
        let summary = try SnapshotMerger.merge(top: fixture.topPath, into: output)
        #expect(summary.filesMerged == 3)

        let merged = try SnapshotReader(path: output)
        #expect(merged.kind == .full && merged.parentFileName.isEmpty)
        #expect(merged.testState == [3])  // the top file's state
        try merged.verifyAllPages()
        let chain = try SnapshotChain(path: fixture.topPath)
        #expect(merged.regions.map(\.placements) == chain.regions.map(\.placements))

        var mismatches: [String] = []
        for (index, region) in merged.regions.enumerated() {
            let composed = try SnapshotChainFixture.composed(chain, region: index)
            for page in 0..<region.pageCount {
                let expected = Array(composed[Int(page) * 4096..<Int(page + 1) * 4096])
                if try merged.readPage(region, page: PageIndex(page)) != expected { mismatches.append("\(region.name) page \(page)") }
                // A full snapshot stores exactly the non-zero pages; zero ones are holes.
                if region.isPresent(PageIndex(page)) == expected.allSatisfy({ $0 == 0 }) { mismatches.append("\(region.name) bit \(page)") }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(10))")
        let ram = try #require(merged.region(named: "ram"))
        #expect(!ram.isPresent(PageIndex(SnapshotChainFixture.zeroedPage)))

        // The same file a full snapshot of the memory now would be: same bitmaps, same CRCs.
        let live = directory.path("live.snap")
        let full = try SnapshotWriter.writeFull(memory: fixture.memory, state: [3], to: live)
        let reference = try SnapshotReader(path: live)
        #expect(merged.regions.map(\.bitmap) == reference.regions.map(\.bitmap))
        #expect(merged.regions.map(\.pageCRCs) == reference.regions.map(\.pageCRCs))
        #expect(summary.write.pagesWritten == full.pagesWritten && summary.write.pagesZero == full.pagesZero)
        #expect(SnapshotFixtures.allocatedBytes(output) < (full.pagesWritten * 4096) + (256 << 10), "zero pages should be holes")

        var info = stat()
        #expect(stat(output, &info) == 0 && info.st_mode & 0o777 == 0o600)
    }

    @Test func mergeRefusesAnExistingOutputUnlessAskedToReplaceIt() throws {
        let fixture = try SnapshotChainFixture(in: directory)
        let output = directory.path("taken.snap")
        let fd = open(output, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        #expect(fd >= 0)
        close(fd)
        let before = SnapshotFixtures.directoryEntries(directory.url.path)
        #expect(throws: SnapshotFormatError.unwritable(path: output, reason: "a file already exists there; refusing to replace it")) {
            try SnapshotMerger.merge(top: fixture.topPath, into: output)
        }
        #expect(SnapshotFixtures.fileSize(output) == 0)
        #expect(SnapshotFixtures.directoryEntries(directory.url.path) == before)  // no temporary file left

        try SnapshotMerger.merge(top: fixture.topPath, into: output, replacingExisting: true)
        #expect(try SnapshotReader(path: output).kind == .full)
    }

    /// Merging a chain into its own base replaces the base safely: the chain's files stay open
    /// while the new file is written and renamed over it.
    @Test func mergeCanReplaceTheBaseOfItsOwnChain() throws {
        let fixture = try SnapshotChainFixture(in: directory)
        let expected = try SnapshotChain(path: fixture.topPath)
        let pages = try (0..<expected.regions.count).map { try SnapshotChainFixture.composed(expected, region: $0) }
        try SnapshotMerger.merge(top: fixture.topPath, into: fixture.basePath, replacingExisting: true)
        let merged = try SnapshotChain(path: fixture.basePath)
        #expect(merged.files.count == 1)
        #expect(try (0..<merged.regions.count).map { try SnapshotChainFixture.composed(merged, region: $0) } == pages)
    }

    @Test func aBrokenChainMergesNothing() throws {
        let top = directory.path("orphan.snap")
        try SnapshotWriter.writeDiff(memory: SnapshotFixtures.memory(ramPages: 16, highPages: 16), dirtyPages: [:],
                                     parentFileName: "gone.snap", state: [], to: top)
        #expect(throws: SnapshotFormatError.self) { try SnapshotMerger.merge(top: top, into: directory.path("out.snap")) }
        #expect(SnapshotFixtures.directoryEntries(directory.url.path) == ["orphan.snap"])
    }
}
