import SnapshotTestSupport
import Glibc
import GuestMemory
import SnapshotFormat
import Testing
import TestSupport

@Suite struct SnapshotRoundTripTests {
    let directory = TemporaryDirectory()

    @Test func fullSnapshotReadsBackIdenticalWithZeroPagesAsHoles() throws {
        let memory = try SnapshotFixtures.memory()
        let path = directory.path("full.snap")
        let summary = try SnapshotWriter.writeFull(memory: memory, state: SnapshotFixtures.state, to: path)
        let reader = try SnapshotReader(path: path)

        #expect(reader.kind == .full && reader.parentFileName.isEmpty)
        #expect(reader.testState == SnapshotFixtures.state)
        #expect(reader.regions.map(\.name) == ["ram", "high"])
        #expect(reader.header.creationTime > 1_700_000_000 * 1_000_000_000)
        let high = try #require(reader.region(named: "high"))
        #expect(high.placements == [GuestPlacement(guestAddress: GuestAddress(1 << 32), sizeInBytes: 256 * 4096, regionOffset: RegionOffset(0))])

        var nonZero: UInt64 = 0
        var mismatches: [String] = []
        for region in memory.regions {
            let stored = try #require(reader.region(named: region.name))
            #expect(stored.sizeInBytes == region.sizeInBytes)
            #expect(reader.pagesFileOffset(stored) % (2 << 20) == 0)
            for page in 0..<region.sizeInBytes / 4096 {
                let expected = try region.read(count: 4096, at: RegionOffset(page * 4096))
                let isZero = expected.allSatisfy { $0 == 0 }
                if !isZero { nonZero += 1 }
                if reader.isPresent(stored, page: PageIndex(page)) == isZero { mismatches.append("\(region.name) bit \(page)") }
                if try reader.readPage(stored, page: PageIndex(page)) != expected { mismatches.append("\(region.name) page \(page)") }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(10))")
        #expect(summary.pagesWritten == nonZero)
        #expect(summary.pagesZero == 1024 + 256 - nonZero)
        #expect(summary.fileSizeInBytes == SnapshotFixtures.fileSize(path))
        try reader.verifyAllPages()

        // Sparse: far fewer blocks than the regions' size; and a zero page's offset is a hole.
        let allocated = SnapshotFixtures.allocatedBytes(path)
        #expect(allocated < nonZero * 4096 + (256 << 10), "allocated \(allocated) for \(nonZero) pages")
        let ram = try #require(reader.region(named: "ram"))
        let holeOffset = reader.pagesFileOffset(ram) + 1022 * 4096  // page 1022 is zero, page 1023 is filled
        #expect(!ram.isPresent(PageIndex(1022)))
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let nextData = lseek(fd, off_t(holeOffset), 3 /* SEEK_DATA */)
        #expect(nextData != off_t(holeOffset), "page 1022 should be a hole")
        #expect(SnapshotFixtures.directoryEntries(directory.url.path) == ["full.snap"])
    }

    @Test func diffSnapshotHoldsOnlyDirtyPagesAndNamesItsParent() throws {
        let memory = try SnapshotFixtures.memory()
        let ramRegion = try #require(memory.region(named: "ram"))
        // Page 9 was filled and is now zero again: a diff must record it, not defer to the parent.
        try ramRegion.write([UInt8](repeating: 0, count: 4096), at: RegionOffset(9 * 4096))
        var dirty = PageBitmap(pageCount: 1024)
        let dirtyPages: [UInt64] = [3, 4, 5, 6, 9, 150, 1023]
        for page in dirtyPages { dirty.insert(PageIndex(page)) }
        let path = directory.path("diff.snap")
        let summary = try SnapshotWriter.writeDiff(
            memory: memory, dirtyPages: ["ram": dirty], parentFileName: "base.snap", state: [], to: path)
        #expect(summary.pagesSkipped == 1024 - 7 + 256)
        #expect(summary.pagesWritten + summary.pagesZero == 7)

        let reader = try SnapshotReader(path: path)
        #expect(reader.kind == .diff && reader.parentFileName == "base.snap" && reader.testState == [])
        let ram = try #require(reader.region(named: "ram"))
        let high = try #require(reader.region(named: "high"))
        #expect(ram.bitmap.setCount == 7 && high.bitmap.setCount == 0)
        for page in dirtyPages {
            #expect(reader.isPresent(ram, page: PageIndex(page)))
            let expected = try ramRegion.read(count: 4096, at: RegionOffset(page * 4096))
            #expect(try reader.readPage(ram, page: PageIndex(page)) == expected, "page \(page)")
        }
        #expect(ram.pageCRCs[9] == SnapshotWriter.zeroPageCRC)
        #expect(SnapshotWriter.zeroPageCRC == 0x98F9_4189)  // docs/FORMAT.md
        var buffer = [UInt8](repeating: 0xEE, count: 4096)
        let content = try buffer.withMutableBytes { try reader.readPage(ram, page: PageIndex(0), into: &$0) }
        #expect(content == .inParent && buffer.allSatisfy { $0 == 0 })
        try reader.verifyAllPages()
    }

    @Test func fullSnapshotReportsZeroForAbsentPagesAndRejectsPagesPastTheEnd() throws {
        let memory = try SnapshotFixtures.memory(ramPages: 64, highPages: 16)
        let path = directory.path("small.snap")
        try SnapshotWriter.writeFull(memory: memory, state: [1, 2, 3], to: path)
        let reader = try SnapshotReader(path: path)
        let ram = try #require(reader.region(named: "ram"))
        var buffer = [UInt8](repeating: 0xEE, count: 4096)
        let content = try buffer.withMutableBytes { try reader.readPage(ram, page: PageIndex(1), into: &$0) }
        #expect(content == .zero && buffer.allSatisfy { $0 == 0 })
        #expect(throws: SnapshotFormatError.pageOutOfRange(path: path, region: "ram", page: PageIndex(64), pageCount: 64)) {
            try reader.readPage(ram, page: PageIndex(64))
        }
    }

    @Test func writerRefusesWhatTheFormatCannotHold() throws {
        let memory = try SnapshotFixtures.memory(ramPages: 16, highPages: 16)
        let path = directory.path("x.snap")
        #expect(throws: SnapshotFormatError.self) {
            try SnapshotWriter.writeFull(memory: memory, state: [UInt8](repeating: 1, count: (16 << 20) + 1), to: path)
        }
        #expect(throws: SnapshotFormatError.self) {
            try SnapshotWriter.writeDiff(memory: memory, dirtyPages: [:], parentFileName: "a/b", state: [], to: path)
        }
        #expect(throws: SnapshotFormatError.self) {
            try SnapshotWriter.writeDiff(memory: memory, dirtyPages: ["ram": PageBitmap(pageCount: 3)], parentFileName: "p", state: [], to: path)
        }
        #expect(SnapshotFixtures.directoryEntries(directory.url.path).isEmpty)
    }

    @Test func layoutMatchesTheWorkedExampleInFORMAT() throws {
        let path = directory.path("example.snap")
        try SnapshotWriter.writeFull(memory: SnapshotFixtures.memory(), state: SnapshotFixtures.state, to: path)
        let reader = try SnapshotReader(path: path)
        let ram = try #require(reader.region(named: "ram"))
        let high = try #require(reader.region(named: "high"))
        #expect([ram.bitmapOffset, ram.crcTableOffset, high.bitmapOffset, high.crcTableOffset] == [4096, 8192, 12288, 16384])
        #expect(ram.pagesOffset == 0x20_0000 && high.pagesOffset == 0x60_0000)
        // The configuration area (an empty container, 16 bytes) follows the CRC tables at 20480.
        #expect(reader.header.configurationOffset == 20480 && reader.header.configurationLength == 16)
        // The state: a container of one 3000-byte section, 16 + 48 + 3000 bytes.
        #expect(reader.header.stateOffset == 0x70_0000 && reader.fileSizeInBytes == 0x70_0000 + 3064)
        let header = SnapshotFixtures.bytes(path, at: 0, count: 4096)
        #expect(Array(header[0..<8]) == Array("ENGRAMSN".utf8))
        #expect(Array(header[8..<32]) == [2, 0, 0, 0, 4, 3, 2, 1, 0, 16, 0, 0, 1, 0, 0, 0, 0, 16, 0, 0, 2, 0, 0, 0])
        #expect(Array(header[512..<516]) == Array("ram\0".utf8))
        #expect(Array(header[576..<584]) == [0, 0, 0x40, 0, 0, 0, 0, 0])  // ram size 4 MiB
        #expect(Array(header[736..<741]) == Array("high\0".utf8))  // entry 1 at 512 + 224
        let crc = CRC32C.checksum(Array(header[0..<4092]))
        #expect(Array(header[4092..<4096]) == (0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * UInt32($0))) })
    }

    /// Anonymous memory has no descriptor to ask for holes, so every page is scanned; and a
    /// second write replaces the first snapshot at the same path in one rename.
    @Test func anonymousRegionRoundTripsAndRewriteReplacesTheFile() throws {
        let region = try GuestRegion(name: "anon", sizeInBytes: 64 * 4096, backing: .anonymous)
        try region.write(SnapshotFixtures.pageBytes(region: "anon", page: 5), at: RegionOffset(5 * 4096))
        try region.write([7], at: RegionOffset(63 * 4096 + 4095))
        let memory = GuestMemoryMap(regions: [region], mappings: [])
        let path = directory.path("anon.snap")
        let first = try SnapshotWriter.writeFull(memory: memory, state: [1], to: path)
        #expect(first.pagesWritten == 2 && first.pagesZero == 62)
        try region.write([9], at: RegionOffset(10 * 4096))
        try SnapshotWriter.writeFull(memory: memory, state: [2], to: path)
        let reader = try SnapshotReader(path: path)
        let stored = try #require(reader.region(named: "anon"))
        #expect(reader.testState == [2] && stored.bitmap.setCount == 3 && stored.placements.isEmpty)
        for page: UInt64 in [5, 10, 63] {
            #expect(try reader.readPage(stored, page: PageIndex(page)) == region.read(count: 4096, at: RegionOffset(page * 4096)))
        }
        #expect(SnapshotFixtures.directoryEntries(directory.url.path) == ["anon.snap"])
    }
}
