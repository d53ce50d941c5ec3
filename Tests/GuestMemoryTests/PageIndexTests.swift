import Testing
@testable import GuestMemory

/// Page numbers as a type: ranges count and iterate pages, arithmetic stays in pages.
@Suite struct PageIndexTests {
    @Test func rangesCountAndIteratePages() {
        let pages = PageIndex(3)..<PageIndex(7)
        #expect(pages.count == 4)
        #expect(pages.map(\.rawValue) == [3, 4, 5, 6])
        #expect(pages.contains(6) && !pages.contains(7))
    }

    @Test func arithmeticAndOffsets() {
        var page: PageIndex = 10
        page += 5
        #expect(page == 15 && page - UInt64(3) == PageIndex(12) && page - PageIndex(10) == 5)
        #expect(page.regionOffset == RegionOffset(15 * 4096))
        #expect("\(page)" == "15")
    }

    @Test func theLargestPageComparesWithoutTrapping() {
        let last = PageIndex(.max)
        #expect(last == PageIndex(.max) && last != 0 && PageIndex(0) < last)
    }
}
