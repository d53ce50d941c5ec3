import Inspect
import Testing
import TestSupport

/// Zero, duplicate and unique pages are counted exactly, holes and stored zero pages alike.
@Suite struct PageStatisticsTests {
    let directory = TemporaryDirectory()

    @Test func countsZeroDuplicateAndUniquePages() throws {
        let path = directory.path("stats.raw")
        // 3000 pages: every 4th a hole, every 4th+1 stored zeros, every 4th+2 one shared page, the rest distinct.
        try InspectFixtures.writeRaw(path, pages: 3000) { page in
            switch page % 4 {
            case 0: nil
            case 1: [UInt8](repeating: 0, count: 4096)
            case 2: InspectFixtures.pageBytes(7, salt: 99)
            default: InspectFixtures.pageBytes(page)
            }
        }
        let counts = try PageStatistics.count(try MemoryImage.raw(path: path, layout: .flat))
        #expect(counts.count == 1)
        #expect(counts[0].pages == 3000)
        #expect(counts[0].zero == 1500)
        #expect(counts[0].unique == 750 + 1)
        #expect(counts[0].duplicate == 750 - 1)
    }

    @Test func aPageDifferingInOneByteIsUnique() throws {
        let path = directory.path("near.raw")
        try InspectFixtures.writeRaw(path, pages: 64) { page in
            var bytes = [UInt8](repeating: 0x5A, count: 4096)
            bytes[page * 61 % 4096] ^= 1
            return bytes
        }
        let counts = try PageStatistics.count(try MemoryImage.raw(path: path, layout: .flat))
        #expect(counts[0].unique == 64 && counts[0].duplicate == 0)
    }
}
