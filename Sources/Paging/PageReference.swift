import GuestMemory

/// One page of one region, numbered as the page source numbers them: the unit of a working set
/// and of a prefetch stream.
package struct PageReference: Sendable, Hashable {
    package let region: Int
    package let page: PageIndex

    package init(region: Int, page: PageIndex) {
        self.region = region
        self.page = page
    }

    /// Regions fit in 8 bits (a snapshot has at most 64), pages in the other 56.
    package static let maximumRegion = 255
    package static let maximumPage = PageIndex((1 << 56) - 1)

    /// Region in the top 8 bits, page in the low 56: the form on disk and on the wire.
    package var packed: UInt64 { UInt64(region) << 56 | page.rawValue }

    package init(packed: UInt64) {
        self.init(region: Int(packed >> 56), page: PageIndex(packed & Self.maximumPage.rawValue))
    }
}

/// Pages `firstPage..<firstPage + count` of a source's region `region`: one read.
package struct PageRun: Sendable, Equatable {
    package let region: Int
    package let firstPage: PageIndex
    package let count: Int

    package init(region: Int, firstPage: PageIndex, count: Int) {
        self.region = region
        self.firstPage = firstPage
        self.count = count
    }
}
