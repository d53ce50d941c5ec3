import SnapshotTestSupport
import GuestMemory
import Inspect
import SnapshotFormat
import Testing
import TestSupport

/// Diff reports exactly the changed pages, as runs with guest-physical addresses, and refuses
/// images of different machines.
@Suite struct ImageDiffTests {
    let directory = TemporaryDirectory()

    @Test func reportsChangedPagesAsRuns() throws {
        let (a, b) = (directory.path("a.raw"), directory.path("b.raw"))
        try InspectFixtures.writeRaw(a, pages: 2000) { $0 % 3 == 0 ? nil : InspectFixtures.pageBytes($0) }
        try InspectFixtures.writeRaw(b, pages: 2000) { page in
            if (100..<103).contains(page) || page == 1500 { return InspectFixtures.pageBytes(page, salt: 1) }
            if page == 1999 { return [UInt8](repeating: 0, count: 4095) + [1] }
            return page % 3 == 0 ? nil : InspectFixtures.pageBytes(page)
        }
        let difference = try ImageDiff.compare(try MemoryImage.raw(path: a, layout: .flat), try MemoryImage.raw(path: b, layout: .flat))
        #expect(difference.comparedPages == 2000)
        #expect(difference.differingPages == 5)
        #expect(difference.runs.map(\.pages) == [100..<103, 1500..<1501, 1999..<2000])
        #expect(difference.runs.first?.guestAddress == 100 * 4096)
    }

    @Test func snapshotsOfTheSameMemoryAreEqualAndADiffChainShowsItsChanges() throws {
        let memory = try InspectFixtures.memory { region, page in page % 4 == 0 ? InspectFixtures.pageBytes(page, salt: region.count) : nil }
        let full = directory.path("full.snap")
        try SnapshotWriter.writeFull(memory: memory, state: [], to: full)
        let equal = try ImageDiff.compare(try MemoryImage.snapshot(path: full), try MemoryImage.snapshot(path: full))
        #expect(equal.differingPages == 0 && equal.comparedPages == 320)

        try memory.regions[1].write(Array("CHANGED".utf8), at: RegionOffset(5 * 4096))
        var dirty = PageBitmap(pageCount: 64)
        dirty.insert(PageIndex(5))
        let diff = directory.path("diff.snap")
        try SnapshotWriter.writeDiff(memory: memory, dirtyPages: ["high": dirty], parentFileName: "full.snap", state: [], to: diff)
        let changed = try ImageDiff.compare(try MemoryImage.snapshot(path: full), try MemoryImage.snapshot(path: diff))
        #expect(changed.runs == [DifferingPages(region: "high", pages: 5..<6, guestAddress: (1 << 32) + 5 * 4096)])
    }

    @Test func imagesOfDifferentShapesAreRefused() throws {
        let (a, b) = (directory.path("small.raw"), directory.path("large.raw"))
        try InspectFixtures.writeRaw(a, pages: 4) { _ in nil }
        try InspectFixtures.writeRaw(b, pages: 8) { _ in nil }
        #expect(throws: InspectError.self) { try ImageDiff.compare(try MemoryImage.raw(path: a), try MemoryImage.raw(path: b)) }
    }
}
