import LinuxSystem
import GuestMemory
import SnapshotFormat

/// Builds guest memory regions from a snapshot chain for the copy and map restore modes,
/// and empty ones for the lazy mode. Regions come out in the chain's region order.
package enum SnapshotMemoryLoader {
    /// Pages read per call: large reads, bounded memory.
    static let batchPages: UInt64 = 2048

    /// Fresh regions (memfd unless `backings` names another) with every stored page read in
    /// and checked; zero pages are left untouched, so they cost no memory.
    package static func copy(_ chain: SnapshotChain, backings: [String: RegionBacking] = [:]) throws(MemoryLoadError) -> [GuestRegion] {
        try copy(chain, shapes: chain.regions.map(\.shape), backings: backings)
    }

    /// Fresh regions shaped by `shapes` with every page `source` does not know to be zero read
    /// in (a page server's, over the network).
    package static func copy(
        _ source: any PageSource, shapes: [SnapshotRegionShape], backings: [String: RegionBacking] = [:],
        placeholders: [String: GuestRegion] = [:]
    ) throws(MemoryLoadError) -> [GuestRegion] {
        let regions = try empty(shapes: shapes, backings: backings, placeholders: placeholders)
        for (index, region) in regions.enumerated() {
            try copyPages(from: source, region: index, into: region) { !source.isZeroPage(region: index, page: $0) }
        }
        return regions
    }

    /// Copy-on-write mappings of the base snapshot's page areas, with pages from the chain's
    /// diffs copied over them. Nothing of the base is read: the guest's first touches fault in
    /// the file's page cache, which every VM mapping the same snapshot shares. A region with a
    /// placeholder (a standby VMM's) is mapped over it.
    package static func map(_ chain: SnapshotChain, placeholders: [String: GuestRegion] = [:]) throws(MemoryLoadError) -> [GuestRegion] {
        let base = chain.base
        let baseIndex = UInt16(chain.files.count - 1)
        var regions: [GuestRegion] = []
        for (index, stored) in base.regions.enumerated() {
            let region: GuestRegion
            do {
                region = try GuestRegion(name: stored.name, sizeInBytes: stored.sizeInBytes, copyOnWriteOf: base.fileDescriptor,
                                         at: base.pagesFileOffset(stored), path: base.path, over: placeholders[stored.name])
            } catch { throw .region(error) }
            if chain.files.count > 1 {
                try copyPages(from: chain, region: index, into: region) {
                    let owner = chain.owner(region: index, page: $0)
                    return owner != SnapshotChain.zeroOwner && owner != baseIndex
                }
            }
            regions.append(region)
        }
        return regions
    }

    /// Fresh, all-zero regions shaped like the chain's (for a lazy restore to fill).
    package static func empty(_ chain: SnapshotChain, backings: [String: RegionBacking] = [:]) throws(MemoryLoadError) -> [GuestRegion] {
        try empty(shapes: chain.regions.map(\.shape), backings: backings)
    }

    /// Fresh, all-zero regions of the given shapes (over their placeholders, where they have one).
    package static func empty(
        shapes: [SnapshotRegionShape], backings: [String: RegionBacking] = [:], placeholders: [String: GuestRegion] = [:]
    ) throws(MemoryLoadError) -> [GuestRegion] {
        var regions: [GuestRegion] = []
        for stored in shapes {
            do {
                regions.append(try GuestRegion(name: stored.name, sizeInBytes: stored.sizeInBytes, backing: backings[stored.name] ?? .memfd,
                                               over: placeholders[stored.name]))
            } catch { throw .region(error) }
        }
        return regions
    }

    /// Reads, in batches straight into the region's mapping, every page `wanted` accepts.
    private static func copyPages(
        from source: any PageSource, region index: Int, into region: GuestRegion, wanted: (PageIndex) -> Bool
    ) throws(MemoryLoadError) {
        let pageSize = PageSize.bytes64
        let last = PageIndex(source.pageCount(region: index))
        var page: PageIndex = 0
        while page < last {
            guard wanted(page) else { page += 1; continue }
            var end = page + 1
            while end < last, end - page < batchPages, wanted(end) { end += 1 }
            let result: Result<Void, PageSourceError>? = unsafe region.withUnsafeMutableBytes(
                at: page.regionOffset, count: Int((end - page) * pageSize)
            ) { buffer in
                do throws(PageSourceError) {
                    try unsafe source.readPages(region: index, firstPage: page, into: buffer)
                    return .success(())
                } catch { return .failure(error) }
            }
            guard let result else { throw .unsupported("region \(region.name) is smaller than the snapshot's") }
            do { try result.get() } catch { throw .page(error) }
            page = end
        }
    }
}
