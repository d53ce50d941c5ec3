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
        let regions = try empty(chain, backings: backings)
        for (index, region) in regions.enumerated() {
            try copyPages(from: chain, region: index, into: region) { $0 != SnapshotChain.zeroOwner }
        }
        return regions
    }

    /// Copy-on-write mappings of the base snapshot's page areas, with pages from the chain's
    /// diffs copied over them. Nothing of the base is read: the guest's first touches fault in
    /// the file's page cache, which every VM mapping the same snapshot shares.
    package static func map(_ chain: SnapshotChain) throws(MemoryLoadError) -> [GuestRegion] {
        let base = chain.base
        let baseIndex = UInt16(chain.files.count - 1)
        var regions: [GuestRegion] = []
        for (index, stored) in base.regions.enumerated() {
            let region: GuestRegion
            do {
                region = try GuestRegion(name: stored.name, sizeInBytes: stored.sizeInBytes, copyOnWriteOf: base.fileDescriptor,
                                         at: base.pagesFileOffset(stored), path: base.path)
            } catch { throw .region(error) }
            if chain.files.count > 1 {
                try copyPages(from: chain, region: index, into: region) { $0 != SnapshotChain.zeroOwner && $0 != baseIndex }
            }
            regions.append(region)
        }
        return regions
    }

    /// Fresh, all-zero regions shaped like the chain's (for a lazy restore to fill).
    package static func empty(_ chain: SnapshotChain, backings: [String: RegionBacking] = [:]) throws(MemoryLoadError) -> [GuestRegion] {
        var regions: [GuestRegion] = []
        for stored in chain.regions {
            do {
                regions.append(try GuestRegion(name: stored.name, sizeInBytes: stored.sizeInBytes, backing: backings[stored.name] ?? .memfd))
            } catch { throw .region(error) }
        }
        return regions
    }

    /// Reads, in batches straight into the region's mapping, every page whose owner `wanted` accepts.
    private static func copyPages(
        from chain: SnapshotChain, region index: Int, into region: GuestRegion, wanted: (UInt16) -> Bool
    ) throws(MemoryLoadError) {
        let pageSize = SnapshotLayout.pageSize
        let pageCount = chain.regions[index].pageCount
        var page: UInt64 = 0
        while page < pageCount {
            guard wanted(chain.owner(region: index, page: page)) else { page += 1; continue }
            var end = page + 1
            while end < pageCount, end - page < batchPages, wanted(chain.owner(region: index, page: end)) { end += 1 }
            let result: Result<Void, PageSourceError>? = unsafe region.withUnsafeMutableBytes(
                at: RegionOffset(page * pageSize), count: Int((end - page) * pageSize)
            ) { buffer in
                do throws(PageSourceError) {
                    try unsafe chain.readPages(region: index, firstPage: page, into: buffer)
                    return .success(())
                } catch { return .failure(error) }
            }
            guard let result else { throw .unsupported("region \(region.name) is smaller than the snapshot's") }
            do { try result.get() } catch { throw .page(error) }
            page = end
        }
    }
}
