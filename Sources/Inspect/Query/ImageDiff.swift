import GuestMemory
import LinuxSystem
import Glibc

/// A run of pages that differ between two images, in one region.
package struct DifferingPages: Sendable, Equatable {
    package var region: String
    package var pages: Range<PageIndex>
    /// Where the guest sees the first page, if the region is placed.
    package var guestAddress: UInt64?

    package init(region: String, pages: Range<PageIndex>, guestAddress: UInt64?) {
        self.region = region
        self.pages = pages
        self.guestAddress = guestAddress
    }
}

/// What `engram mem diff` reports.
package struct ImageDifference: Sendable {
    package var runs: [DifferingPages] = []
    package var comparedPages: UInt64 = 0
    package var differingPages: UInt64 = 0
}

/// Compares two images page by page, region by region (matched by name; both must have the
/// same regions and sizes). Pages zero in both are equal without being read.
package enum ImageDiff {
    package static func compare(_ first: MemoryImage, _ second: MemoryImage) throws(InspectError) -> ImageDifference {
        let firstNames = first.regions.map { "\($0.name) (\($0.sizeInBytes) bytes)" }
        let secondNames = second.regions.map { "\($0.name) (\($0.sizeInBytes) bytes)" }
        guard firstNames == secondNames else {
            throw .badArgument("\(first.source) and \(second.source) have different regions: \(firstNames.joined(separator: ", ")) against \(secondNames.joined(separator: ", "))")
        }
        var result = ImageDifference()
        let chunk = RegionScan.chunkBytes
        var left = [UInt8](repeating: 0, count: chunk)
        var right = [UInt8](repeating: 0, count: chunk)
        let pageSize = PageSize.bytes64
        for region in first.regions.indices {
            let size = first.regions[region].sizeInBytes
            var offset: UInt64 = 0
            while offset < size {
                let count = Int(min(UInt64(chunk), size - offset))
                let firstPage = PageIndex(offset / pageSize)
                let pages = (UInt64(count) + pageSize - 1) / pageSize
                result.comparedPages += pages
                if first.isZeroSpan(region: region, pages: firstPage..<firstPage + pages),
                   second.isZeroSpan(region: region, pages: firstPage..<firstPage + pages) {
                    offset += UInt64(count)
                    continue
                }
                try left.withMutableBytes { (all) throws(InspectError) in
                    try all.withBytes(in: 0..<count) { (part) throws(InspectError) in try first.read(region: region, at: offset, into: &part) }
                }
                try right.withMutableBytes { (all) throws(InspectError) in
                    try all.withBytes(in: 0..<count) { (part) throws(InspectError) in try second.read(region: region, at: offset, into: &part) }
                }
                left.withBytes { leftBytes in
                    right.withBytes { rightBytes in
                        var start = 0
                        while start < count {
                            let length = min(Int(pageSize), count - start)
                            if !leftBytes.extracting(start..<start + length).bytesEqual(rightBytes.extracting(start..<start + length)) {
                                result.add(page: firstPage + UInt64(start) / pageSize, region: first.regions[region].name,
                                           guestAddress: first.guestAddress(region: region, offset: offset + UInt64(start)))
                            }
                            start += length
                        }
                    }
                }
                offset += UInt64(count)
            }
        }
        return result
    }
}

extension ImageDifference {
    /// Extends the last run when `page` follows it, else starts a new one.
    mutating func add(page: PageIndex, region: String, guestAddress: UInt64?) {
        differingPages += 1
        if var last = runs.last, last.region == region, last.pages.upperBound == page {
            last.pages = last.pages.lowerBound..<page + 1
            runs[runs.count - 1] = last
        } else {
            runs.append(DifferingPages(region: region, pages: page..<page + 1, guestAddress: guestAddress))
        }
    }
}

extension MemoryImage {
    /// Whether every page in `pages` of `region` lies in zero spans (known zero without reading).
    package func isZeroSpan(region: Int, pages: Range<PageIndex>) -> Bool {
        let entry = regions[region]
        guard var index = entry.spanIndex(of: pages.lowerBound) else { return false }
        while index < entry.spans.count, entry.spans[index].pages.lowerBound < pages.upperBound {
            if entry.spans[index].file != nil { return false }
            index += 1
        }
        return true
    }
}
