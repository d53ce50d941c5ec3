import Glibc
import GuestMemory
import Paging
import SnapshotFormat
import Testing

/// A copy restore by several threads: every page arrives, zero pages stay untouched holes, and a
/// page that fails its check fails the whole copy, whichever thread read it.
@Suite struct ParallelCopyTests {
    static let pages: [UInt64] = [3 * 2048 + 77, 300]

    static func shapes() -> [SnapshotRegionShape] {
        zip(["ram", "high"], pages).map { SnapshotRegionShape(name: $0.0, sizeInBytes: $0.1 * 4096, placements: []) }
    }

    @Test(arguments: [1, 4])
    func everyPageArrivesWhateverTheThreads(threads: Int) throws {
        let source = TestPageSource(pageCounts: Self.pages) { region, page in page % 5 == 1 || (region == 0 && (2048..<4096).contains(page)) }
        let regions = try SnapshotMemoryLoader.copy(source, shapes: Self.shapes(), threads: threads)
        // The second batch is all zero pages: nothing wrote it, so the memfd never allocated it
        // (checked before the comparison below reads, and so allocates, every page).
        let fd = try #require(regions[0].fileDescriptor)
        var info = stat()
        #expect(fstat(fd, &info) == 0)
        #expect(UInt64(info.st_blocks) * 512 <= (Self.pages[0] - 2048) * 4096, "\(info.st_blocks) blocks")
        for index in regions.indices {
            #expect(try source.mismatches(in: regions[index], region: index) == [], "region \(index)")
        }
    }

    @Test func aBadPageFailsTheCopyWhicheverThreadReadIt() throws {
        let source = TestPageSource(pageCounts: Self.pages, failing: (region: 0, page: 2 * 2048 + 9)) { _, page in page % 5 == 1 }
        #expect { _ = try SnapshotMemoryLoader.copy(source, shapes: Self.shapes(), threads: 4) } throws: {
            "\($0)".contains("page 4105")
        }
    }
}
