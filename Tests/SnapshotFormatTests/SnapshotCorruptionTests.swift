import SnapshotTestSupport
import Glibc
import GuestMemory
import SnapshotFormat
import Testing
import TestSupport

@Suite struct SnapshotCorruptionTests {
    let directory = TemporaryDirectory()

    func writeSnapshot(_ name: String) throws -> String {
        let path = directory.path(name)
        try SnapshotWriter.writeFull(memory: SnapshotFixtures.memory(ramPages: 128, highPages: 32), state: SnapshotFixtures.state, to: path)
        return path
    }

    @Test func corruptPageByteNamesRegionAndPage() throws {
        let path = try writeSnapshot("page.snap")
        let clean = try SnapshotReader(path: path)
        let high = try #require(clean.region(named: "high"))
        #expect(high.isPresent(PageIndex(9)))
        let offset = clean.pagesFileOffset(high) + 9 * 4096 + 100
        let original = SnapshotFixtures.bytes(path, at: offset, count: 1)
        SnapshotFixtures.patch(path, at: offset, [original[0] ^ 0x10])

        let reader = try SnapshotReader(path: path)  // metadata is intact; the page is checked when read
        let region = try #require(reader.region(named: "high"))
        #expect(throws: SnapshotFormatError.self) { try reader.readPage(region, page: PageIndex(9)) }
        do {
            _ = try reader.readPage(region, page: PageIndex(9))
        } catch {
            guard case .pageChecksum(_, let name, let page, _, _) = error else { Issue.record("wrong error \(error)"); return }
            #expect(name == "high" && page == PageIndex(9))
            #expect(error.description.contains("region high page 9"))
        }
        #expect(try reader.readPage(region, page: PageIndex(2)) == SnapshotFixtures.pageBytes(region: "high", page: 2))
        #expect(throws: SnapshotFormatError.self) { try reader.verifyAllPages() }
    }

    @Test func truncatedAtManyLengthsIsAlwaysACleanError() throws {
        let path = try writeSnapshot("trunc.snap")
        let reader = try SnapshotReader(path: path)
        let size = reader.fileSizeInBytes
        var lengths: Set<UInt64> = [0, 1, 7, 8, 100, 4095, 4096, 4097, 8192, size - 1, size - 4096, reader.header.stateOffset]
        for region in reader.regions {
            lengths.formUnion([region.bitmapOffset, region.bitmapOffset + 1, region.crcTableOffset + 5, region.pagesOffset,
                               region.pagesOffset + 4096, region.pagesOffset + region.sizeInBytes - 1])
        }
        var generator = SplitMix64(seed: 42)
        for _ in 0..<40 { lengths.insert(UInt64.random(in: 0..<size, using: &generator)) }
        for length in lengths.sorted(by: >) where length < size {
            #expect(truncate(path, off_t(length)) == 0)
            #expect(throws: SnapshotFormatError.self, "length \(length)") { try SnapshotReader(path: path) }
        }
        do {
            _ = try SnapshotReader(path: path)
        } catch {
            #expect(error == .truncated(path: path, expected: 4096, found: 0))
        }
    }

    @Test func wrongMagicIsNamed() throws {
        let path = try writeSnapshot("magic.snap")
        SnapshotFixtures.patch(path, at: 0, Array("QEVM".utf8))
        #expect(throws: SnapshotFormatError.badMagic(path: path)) { try SnapshotReader(path: path) }
        #expect(SnapshotFormatError.badMagic(path: path).description.contains("ENGRAMSN"))
    }

    @Test func futureVersionSaysANewerEngramWroteIt() throws {
        let path = try writeSnapshot("future.snap")
        SnapshotFixtures.patch(path, at: 8, [7, 0, 0, 0])
        #expect(throws: SnapshotFormatError.newerVersion(path: path, version: 7)) { try SnapshotReader(path: path) }
        #expect(SnapshotFormatError.newerVersion(path: path, version: 7).description
            == "snapshot \(path) was written by a newer Engram (format version 7); this Engram reads versions 1 to 2")
    }

    @Test func badHeaderChecksumIsNamed() throws {
        let path = try writeSnapshot("crc.snap")
        let byte = SnapshotFixtures.bytes(path, at: 313, count: 1)
        SnapshotFixtures.patch(path, at: 313, [byte[0] ^ 0x01])  // creation time
        #expect {
            try SnapshotReader(path: path)
        } throws: { error in
            guard let error = error as? SnapshotFormatError, case .headerChecksum = error else { return false }
            return error.description.contains("header is corrupt")
        }
    }

    @Test func wrongEndiannessAndStateCorruptionAreNamed() throws {
        let path = try writeSnapshot("endian.snap")
        SnapshotFixtures.patch(path, at: 12, [1, 2, 3, 4])
        #expect(throws: SnapshotFormatError.wrongEndianness(path: path, found: 0x0403_0201)) { try SnapshotReader(path: path) }

        let statePath = try writeSnapshot("state.snap")
        let reader = try SnapshotReader(path: statePath)
        SnapshotFixtures.patch(statePath, at: reader.header.stateOffset + 10, [0xFF])
        #expect {
            try SnapshotReader(path: statePath)
        } throws: { error in
            guard let error = error as? SnapshotFormatError, case .stateChecksum = error else { return false }
            return true
        }
    }

    @Test func resealedHeaderWithBadOffsetsReachesDeeperChecks() throws {
        let path = try writeSnapshot("deep.snap")
        let headerSize = SnapshotLayout.headerSize(regionCount: 2)
        // Region 0's pages offset moved off its 2 MiB boundary.
        let entry = UInt64(SnapshotLayout.fixedHeaderLength(version: SnapshotLayout.formatVersion))
        SnapshotFixtures.patch(path, at: entry + 208, [0x00, 0x10])
        SnapshotFixtures.resealHeader(path, headerSize: headerSize)
        #expect {
            try SnapshotReader(path: path)
        } throws: { error in
            guard let error = error as? SnapshotFormatError, case .misaligned = error else { return false }
            return true
        }
        // A state length over the cap is refused before it is read.
        let capped = try writeSnapshot("cap.snap")
        SnapshotFixtures.patch(capped, at: 296, [0, 0, 0, 0x10, 0, 0, 0, 0])
        SnapshotFixtures.resealHeader(capped, headerSize: headerSize)
        #expect(throws: SnapshotFormatError.stateTooLarge(path: capped, length: 0x1000_0000, cap: 16 << 20)) {
            try SnapshotReader(path: capped)
        }
    }
}
