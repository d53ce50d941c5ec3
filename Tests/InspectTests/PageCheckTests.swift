import SnapshotTestSupport
import Foundation
import GuestMemory
import Inspect
import SnapshotFormat
import Testing
import TestSupport

/// A snapshot page whose bytes no longer match the CRC32C written with it is refused by every
/// read of it — a dump, a search, statistics, a diff, an export — with a message naming the
/// file, region and page; other pages still read, and `verifyPages: false` shows it as stored.
@Suite struct PageCheckTests {
    let directory = TemporaryDirectory()

    /// "ram" stores every third page; "high" stores none.
    private func writeFull(_ name: String) throws -> (path: String, memory: GuestMemoryMap) {
        let memory = try InspectFixtures.memory { region, page in
            region == "ram" && page % 3 == 0 ? InspectFixtures.pageBytes(page) : nil
        }
        let path = directory.path(name)
        try SnapshotWriter.writeFull(memory: memory, state: [], to: path)
        return (path, memory)
    }

    /// Inverts one byte of `page` of region `region` where the file `path` itself stores it;
    /// returns the page's bytes as they now are in the file.
    @discardableResult
    private func damage(_ path: String, region: Int, page: UInt64, byte: Int = 100) throws -> [UInt8] {
        let stored = try SnapshotReader(path: path).regions[region]
        #expect(stored.bitmap.contains(PageIndex(page)))
        let offset = stored.pagesOffset + page * 4096
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        var bytes = [UInt8](try handle.read(upToCount: 4096) ?? Data())
        bytes[byte] ^= 0xFF
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data(bytes))
        return bytes
    }

    /// The error `body` throws, which must be a damage report naming `path`, region ram and `page`.
    private func expectDamage(
        _ path: String, page: UInt64, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
    ) {
        let error = #expect(throws: InspectError.self, sourceLocation: sourceLocation) { try body() }
        guard let error else { return }
        guard case .damaged(let damagedPath, let reason) = error else {
            Issue.record("expected a damage report, got \(error)", sourceLocation: sourceLocation)
            return
        }
        #expect(damagedPath == path, sourceLocation: sourceLocation)
        #expect(reason.contains("page \(page) of region ram"), "\(reason)", sourceLocation: sourceLocation)
        #expect(reason.contains("CRC32C"), sourceLocation: sourceLocation)
        #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
    }

    @Test func aDamagedPageIsRefusedAndOthersStillRead() throws {
        let (path, _) = try writeFull("full.snap")
        let corrupt = try damage(path, region: 0, page: 9)

        let image = try MemoryImage.snapshot(path: path)
        expectDamage(path, page: 9) { _ = try image.readPhysical(9 * 4096, count: 4096) }
        // A read of part of the page checks the whole page.
        expectDamage(path, page: 9) { _ = try image.readPhysical(9 * 4096 + 200, count: 8) }
        expectDamage(path, page: 9) { _ = try MemoryImage.snapshot(path: path).readPhysical(9 * 4096 + 4000, count: 8) }
        // A read across stored pages 6..<12 is refused as a whole.
        expectDamage(path, page: 9) { _ = try image.readPhysical(6 * 4096, count: 6 * 4096) }

        // Pages around it are whole: stored ones, parts of them, and zero ones.
        #expect(try image.readPhysical(12 * 4096, count: 4096) == InspectFixtures.pageBytes(12))
        #expect(try image.readPhysical(6 * 4096 + 8, count: 8) == Array(InspectFixtures.pageBytes(6)[8..<16]))
        #expect(try image.readPhysical(10 * 4096, count: 2 * 4096) == [UInt8](repeating: 0, count: 2 * 4096))
        // A page already checked reads again (from the verified set) with the same bytes.
        #expect(try image.readPhysical(12 * 4096 + 16, count: 16) == Array(InspectFixtures.pageBytes(12)[16..<32]))
        #expect(image.pageCheck?.isVerified(region: 0, page: 12) == true)
        #expect(image.pageCheck?.isVerified(region: 0, page: 9) == false)

        // Unchecked, the bytes come back as the file holds them.
        let unchecked = try MemoryImage.snapshot(path: path, verifyPages: false)
        #expect(unchecked.pageCheck == nil)
        #expect(try unchecked.readPhysical(9 * 4096, count: 4096) == corrupt)
        #expect(try ImageOpener.open(path: path, verifyPages: false).readPhysical(9 * 4096 + 96, count: 8) == Array(corrupt[96..<104]))
        expectDamage(path, page: 9) { _ = try ImageOpener.open(path: path).readPhysical(9 * 4096, count: 16) }
    }

    @Test func wholeImageQueriesRefuseTheDamagedPage() throws {
        let (path, _) = try writeFull("full.snap")
        let (clean, _) = try writeFull("clean.snap")
        try damage(path, region: 0, page: 9)
        let image = try MemoryImage.snapshot(path: path)
        let page12 = Array(InspectFixtures.pageBytes(12)[0..<32])

        expectDamage(path, page: 9) { try PatternSearch(pattern: page12).run(in: image) { _ in true } }
        expectDamage(path, page: 9) { _ = try PageStatistics.count(image) }
        expectDamage(path, page: 9) { _ = try ImageDiff.compare(try MemoryImage.snapshot(path: clean), image) }
        expectDamage(path, page: 9) { _ = try RawExporter.write(image, to: directory.path("out.raw")) }
        expectDamage(path, page: 9) { _ = try ELFCoreWriter.write(image, to: directory.path("out.elf")) }
        #expect(!FileManager.default.fileExists(atPath: directory.path("out.raw")))

        // Without the check every query runs and the diff sees the flipped byte.
        let unchecked = try MemoryImage.snapshot(path: path, verifyPages: false)
        var hits: [SearchHit] = []
        try PatternSearch(pattern: page12).run(in: unchecked) { hits.append($0); return true }
        #expect(hits.map(\.offset) == [12 * 4096])
        #expect(try PageStatistics.count(unchecked)[0].unique == 86)
        let difference = try ImageDiff.compare(try MemoryImage.snapshot(path: clean), unchecked)
        #expect(difference.runs == [DifferingPages(region: "ram", pages: 9..<10, guestAddress: 9 * 4096)])
        _ = try RawExporter.write(unchecked, to: directory.path("out.raw"))

        // The clean snapshot passes every query with the check on.
        #expect(try PageStatistics.count(try MemoryImage.snapshot(path: clean))[0].unique == 86)
    }

    @Test func aDamagedPageInADiffsParentIsNamedInTheParent() throws {
        let (full, memory) = try writeFull("full.snap")
        // The diff stores page 9 anew (changed) and page 15 (unchanged contents).
        try memory.regions[0].write(InspectFixtures.pageBytes(9, salt: 1), at: RegionOffset(9 * 4096))
        var dirty = PageBitmap(pageCount: 256)
        dirty.insert(PageIndex(9))
        dirty.insert(PageIndex(15))
        let diff = directory.path("diff.snap")
        try SnapshotWriter.writeDiff(memory: memory, dirtyPages: ["ram": dirty], parentFileName: "full.snap", state: [], to: diff)

        // Page 9 of the parent is hidden by the diff's page 9: damaging it changes nothing.
        try damage(full, region: 0, page: 9)
        // Page 3 is only in the parent.
        let corrupt = try damage(full, region: 0, page: 3, byte: 4000)

        let image = try MemoryImage.snapshot(path: diff)
        #expect(image.kind == "Engram snapshot (chain of 2 files)")
        #expect(try image.readPhysical(9 * 4096, count: 4096) == InspectFixtures.pageBytes(9, salt: 1))
        #expect(try image.readPhysical(15 * 4096, count: 4096) == InspectFixtures.pageBytes(15))
        #expect(try image.readPhysical(6 * 4096, count: 4096) == InspectFixtures.pageBytes(6))
        expectDamage(full, page: 3) { _ = try image.readPhysical(3 * 4096, count: 4096) }
        expectDamage(full, page: 3) { _ = try image.readPhysical(3 * 4096 + 4000, count: 1) }
        expectDamage(full, page: 3) { _ = try PageStatistics.count(image) }
        expectDamage(full, page: 3) { try PatternSearch(pattern: [0xAB, 0xCD]).run(in: image) { _ in true } }

        // Damage in the diff itself names the diff.
        try damage(diff, region: 0, page: 15)
        expectDamage(diff, page: 15) { _ = try MemoryImage.snapshot(path: diff).readPhysical(15 * 4096, count: 4096) }

        let unchecked = try MemoryImage.snapshot(path: diff, verifyPages: false)
        #expect(try unchecked.readPhysical(3 * 4096, count: 4096) == corrupt)
    }

    @Test func imagesWithoutPageCRCsAreNotChecked() throws {
        let path = directory.path("ram.raw")
        try InspectFixtures.writeRaw(path, pages: 4) { InspectFixtures.pageBytes($0) }
        let image = try ImageOpener.open(path: path, layout: .flat)
        #expect(image.pageCheck == nil)
        #expect(try image.readPhysical(4096, count: 4096) == InspectFixtures.pageBytes(1))
    }
}
