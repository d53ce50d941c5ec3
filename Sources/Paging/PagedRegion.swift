import LinuxSystem
import GuestMemory

/// A region as the pager sees it: where it is mapped, and where its pages sit in the pager's
/// numbering of all pages (region 0's pages first, then region 1's, ...).
struct PagedRegion: Sendable {
    /// The region's number, in the machine and in the page source.
    let index: Int
    let region: GuestRegion
    /// Host address of the region's first byte.
    let hostStart: UInt64
    let pageCount: UInt64
    /// The pager-wide number of the region's page 0.
    let firstPage: PagerPage
    /// Pages userfaultfd installs at once: a huge page's worth on hugetlbfs (512 for 2 MiB),
    /// where a fault is served, claimed and filled a whole huge page at a time; else 1.
    let unitPages: UInt64

    /// True on hugetlbfs: every install covers whole units, and zeros are copied in (there is no UFFDIO_ZEROPAGE).
    var installsHugePages: Bool { unitPages > 1 }

    /// The region's pages in pager-wide numbers.
    var pages: Range<PagerPage> { firstPage..<firstPage + pageCount }

    var sizeInBytes: UInt64 { pageCount * PageSize.bytes64 }

    /// True if host address `address` lies in this region.
    func contains(hostAddress address: UInt64) -> Bool { address >= hostStart && address - hostStart < sizeInBytes }

    /// The pager-wide page holding host address `address` (which `contains`).
    func page(atHostAddress address: UInt64) -> PagerPage { firstPage + (address - hostStart) / PageSize.bytes64 }

    /// Host address of pager-wide page `page`.
    func hostAddress(ofPage page: PagerPage) -> UInt64 { hostStart + (page - firstPage) * PageSize.bytes64 }

    /// The page's number inside the region, as the page source counts.
    func sourcePage(_ page: PagerPage) -> PageIndex { PageIndex(page - firstPage) }

    /// The unit (huge page, or the page itself) holding pager-wide page `page`.
    func unit(of page: PagerPage) -> Range<PagerPage> {
        let start = page - (page - firstPage) % unitPages
        return start..<start + unitPages
    }

    /// The pager-wide number of the region's page `page`.
    func pagerPage(_ page: PageIndex) -> PagerPage { firstPage + page.rawValue }
}
