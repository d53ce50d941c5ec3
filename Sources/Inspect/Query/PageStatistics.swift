import LinuxSystem
import GuestMemory

/// How a region's pages divide into zero pages, copies of earlier pages, and unique contents.
package struct RegionPageCounts: Sendable, Equatable {
    package var name: String
    package var pages: UInt64 = 0
    package var zero: UInt64 = 0
    /// Non-zero pages whose contents appeared earlier in the image (in any region).
    package var duplicate: UInt64 = 0
    /// Non-zero pages that are the first with their contents.
    package var unique: UInt64 = 0

    package init(name: String) { self.name = name }
}

/// Counts zero, duplicate and unique pages per region. Pages are told apart by a 64-bit hash of
/// their contents (collisions are ignored: about 2^-9 likely for a whole TiB of distinct pages).
package enum PageStatistics {
    package static func count(_ image: MemoryImage) throws(InspectError) -> [RegionPageCounts] {
        let scan = RegionScan()
        var seen = Set<UInt64>()
        var result: [RegionPageCounts] = []
        let pageSize = PageSize.bytes
        for region in image.regions.indices {
            var counts = RegionPageCounts(name: image.regions[region].name)
            counts.pages = image.regions[region].pageCount
            try scan.forEachChunk(of: image, region: region, zero: { (_, count) throws(InspectError) -> Bool in
                counts.zero += (count + PageSize.bytes64 - 1) / PageSize.bytes64
                return true
            }, data: { (_, bytes) throws(InspectError) -> Bool in
                var start = 0
                while start < bytes.byteCount {
                    let end = min(start + pageSize, bytes.byteCount)
                    let page = bytes.extracting(start..<end)
                    if ZeroPageScan.isZero(page) {
                        counts.zero += 1
                    } else if seen.insert(PageHash.hash(page)).inserted {
                        counts.unique += 1
                    } else {
                        counts.duplicate += 1
                    }
                    start = end
                }
                return true
            })
            result.append(counts)
        }
        return result
    }
}
