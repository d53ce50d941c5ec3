import SnapshotTestSupport
import Glibc
import GuestMemory
import Paging
import SnapshotFormat
import Testing
import TestSupport

/// Lazy restore from a real snapshot file: SnapshotWriter writes a machine's memory,
/// SnapshotChain serves it (pread, CRC checked) into fresh memfd regions.
@Suite struct SnapshotRestoreTests {
    let directory = TemporaryDirectory()

    /// "ram" (1024 pages: data in runs and singles, zero gaps, one page with only its last byte set)
    /// and "high" (256 pages, sparse), like the snapshot format's own fixture.
    static func memory() throws -> GuestMemoryMap {
        let ram = try GuestRegion(name: "ram", sizeInBytes: 1024 * 4096, backing: .memfd)
        let high = try GuestRegion(name: "high", sizeInBytes: 256 * 4096, backing: .memfd)
        for region in [ram, high] {
            for page in 0..<region.sizeInBytes / 4096 where isFilled(region: region.name, page: page) {
                try region.write(pageBytes(region: region.name, page: page), at: RegionOffset(page * 4096))
            }
        }
        try ram.write([0x01], at: RegionOffset(2 * 4096 + 4095))
        return GuestMemoryMap(regions: [ram, high], mappings: [
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: ram.sizeInBytes, region: ram, regionOffset: RegionOffset(0)),
            GuestMapping(guestAddress: GuestAddress(1 << 32), sizeInBytes: high.sizeInBytes, region: high, regionOffset: RegionOffset(0)),
        ])
    }

    static func isFilled(region: String, page: UInt64) -> Bool {
        region == "ram" ? (page % 3 == 0 || (100..<400).contains(page)) : (page % 7 == 2)
    }

    static func pageBytes(region: String, page: UInt64) -> [UInt8] {
        let seed = page &* 1_000_003 &+ UInt64(region.utf8.count)
        return (0..<4096).map { UInt8(truncatingIfNeeded: (seed &+ UInt64($0)) &* 0x9E37_79B9_7F4A_7C15 >> 56) | 1 }
    }

    /// Fresh empty memfd regions shaped like `memory`'s.
    static func emptyRegions(like memory: GuestMemoryMap) throws -> [GuestRegion] {
        try memory.regions.map { try GuestRegion(name: $0.name, sizeInBytes: $0.sizeInBytes, backing: .memfd) }
    }

    static func sameBytes(_ a: GuestRegion, _ b: GuestRegion) throws -> Bool {
        try a.read(count: Int(a.sizeInBytes), at: RegionOffset(0)) == b.read(count: Int(b.sizeInBytes), at: RegionOffset(0))
    }

    @Test func restoresLazilyFromASnapshotFile() throws {
        let original = try Self.memory()
        let path = directory.path("full.snap")
        try SnapshotWriter.writeFull(memory: original, state: [1, 2, 3], to: path)
        let chain = try SnapshotChain(path: path)
        let restored = try Self.emptyRegions(like: original)
        let pager = try LazyPager(regions: restored, source: chain)
        let failures = FailureRecorder()
        try pager.start(onFailure: failures.handler)

        // Data, zero, the last-byte page, and pages of the second region, from two threads.
        let ramPages: [UInt64] = [150, 2, 1, 999, 500, 0]
        let highPages: [UInt64] = [2, 3, 255]
        let ram = PageToucher(restored[0], pages: ramPages)
        let high = PageToucher(restored[1], pages: highPages)
        #expect(try #require(ram.pages()) == ramPages.map { try original.regions[0].read(count: 4096, at: RegionOffset($0 * 4096)) })
        #expect(try #require(high.pages()) == highPages.map { try original.regions[1].read(count: 4096, at: RegionOffset($0 * 4096)) })

        #expect(pager.waitUntilFilled())
        #expect(failures.all.isEmpty)
        #expect(try Self.sameBytes(original.regions[0], restored[0]))
        #expect(try Self.sameBytes(original.regions[1], restored[1]))
        let statistics = pager.statistics()
        #expect(statistics.complete && statistics.totalPages == 1280 && statistics.presentPages == 1280)
        #expect(statistics.demandPages + statistics.backgroundPages + statistics.untouchedPages == 1280)
        #expect(statistics.faultLatency.count == statistics.demandFaults + statistics.alreadyPresentFaults)
    }

    @Test func corruptPageInTheSnapshotStopsTheRestore() throws {
        let original = try Self.memory()
        let path = directory.path("corrupt.snap")
        try SnapshotWriter.writeFull(memory: original, state: [], to: path)
        let reader = try SnapshotReader(path: path)
        let ram = try #require(reader.region(named: "ram"))
        // Flip a byte of stored page 150 of "ram"; its CRC no longer matches.
        let offset = reader.pagesFileOffset(ram) + 150 * 4096 + 17
        let fd = open(path, O_RDWR)
        try #require(fd >= 0)
        var byte: UInt8 = 0
        #expect(pread(fd, &byte, 1, off_t(offset)) == 1)
        byte ^= 0xFF
        #expect(pwrite(fd, &byte, 1, off_t(offset)) == 1)
        close(fd)

        let restored = try Self.emptyRegions(like: original)
        let pager = try LazyPager(regions: restored, source: try SnapshotChain(path: path))
        let failures = FailureRecorder()
        try pager.start(onFailure: failures.handler)
        #expect(!pager.waitUntilFilled())
        let message = try #require(failures.all.first)
        #expect(message.contains("region ram") && message.contains("page 150 is corrupt") && message.contains(path))
        #expect(pager.statistics().failure == message)
    }

    @Test func snapshotWithOtherRegionsIsRefused() throws {
        let original = try Self.memory()
        let path = directory.path("two.snap")
        try SnapshotWriter.writeFull(memory: original, state: [], to: path)
        let chain = try SnapshotChain(path: path)
        let one = [try GuestRegion(name: "ram", sizeInBytes: 1024 * 4096, backing: .memfd)]
        #expect(throws: PagingError.regionCount(machine: 1, source: 2)) { try LazyPager(regions: one, source: chain) }
        let swapped = try original.regions.reversed().map { try GuestRegion(name: $0.name, sizeInBytes: $0.sizeInBytes, backing: .memfd) }
        #expect(throws: PagingError.regionSize(name: "high", index: 0, sizeInBytes: 256 * 4096, sourcePages: 1024)) {
            try LazyPager(regions: swapped, source: chain)
        }
    }
}
