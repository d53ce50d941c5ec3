import Inspect
import Testing
import TestSupport

/// Search finds every occurrence, including ones across chunk and page boundaries and inside
/// zero pages, and reports guest-physical addresses through the region's placement.
@Suite struct PatternSearchTests {
    let directory = TemporaryDirectory()

    func hits(_ image: MemoryImage, _ pattern: [UInt8], limit: Int = .max) throws -> [SearchHit] {
        var found: [SearchHit] = []
        try PatternSearch(pattern: pattern).run(in: image) { found.append($0); return found.count < limit }
        return found
    }

    @Test func findsEveryOccurrenceWithItsAddress() throws {
        let path = directory.path("ram.raw")
        // 2048 pages = 8 MiB: two scan chunks of 4 MiB, with holes.
        try InspectFixtures.writeRaw(path, pages: 2048) { $0 % 5 == 0 ? nil : [UInt8](repeating: 0x11, count: 4096) }
        let needle = Array("ENGRAM-NEEDLE".utf8)
        let places = [4096 * 3 + 10, 4096 * 7 - 5 /* across a page boundary */, (4 << 20) - 6 /* across the chunk seam */, 8 * 4096 * 1024 - needle.count]
        for place in places { try InspectFixtures.patch(path, at: place, needle) }
        let image = try MemoryImage.raw(path: path, layout: .flat)
        let found = try hits(image, needle)
        #expect(found.map(\.offset) == places.map(UInt64.init))
        #expect(found.map(\.guestAddress) == places.map { UInt64($0) })
    }

    @Test func guestAddressesFollowTheLayout() throws {
        // A q35-sized file: the part above 2 GiB of file lands at 4 GiB. Sparse, so it costs nothing.
        let path = directory.path("big.raw")
        let size = 0xB000_0000
        try InspectFixtures.writeRaw(path, pages: size / 4096) { _ in nil }
        try InspectFixtures.patch(path, at: 0x8000_0000 + 0x1234, Array("HIGH".utf8))
        let found = try hits(try MemoryImage.raw(path: path, layout: .q35), Array("HIGH".utf8))
        #expect(found.count == 1)
        #expect(found.first?.guestAddress == (1 << 32) + 0x1234)
    }

    @Test func patternsWithZerosMatchInsideZeroPages() throws {
        let path = directory.path("zeros.raw")
        try InspectFixtures.writeRaw(path, pages: 4) { $0 == 1 ? [UInt8](repeating: 0xAB, count: 4096) : nil }
        let image = try MemoryImage.raw(path: path, layout: .flat)
        // 0xAB then two zeros: only where page 1 ends and the hole of page 2 begins.
        let found = try hits(image, [0xAB, 0, 0])
        #expect(found.map(\.offset) == [2 * 4096 - 1])
        #expect(try hits(image, [0, 0, 0, 0], limit: 3).count == 3)
    }

    @Test func stopsAtTheLimitAndRefusesBadPatterns() throws {
        let path = directory.path("many.raw")
        try InspectFixtures.writeRaw(path, pages: 16) { _ in Array(repeating: 0x41, count: 4096) }
        #expect(try hits(try MemoryImage.raw(path: path, layout: .flat), [0x41], limit: 5).count == 5)
        #expect(throws: InspectError.self) { try PatternSearch(pattern: []) }
        #expect(throws: InspectError.self) { try PatternSearch(pattern: [UInt8](repeating: 1, count: 5000)) }
    }
}
