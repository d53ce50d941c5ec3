import GuestMemory
import LinuxSystem
import SnapshotFormat
import Synchronization

/// Builds guest memory regions from a snapshot chain for the copy and map restore modes,
/// and empty ones for the lazy mode. Regions come out in the chain's region order.
package enum SnapshotMemoryLoader {
    /// Pages read per call: large reads, bounded memory.
    static let batchPages: UInt64 = 2048

    /// Threads a copy reads and checks pages with: one per core (at most 8), each taking the next
    /// 8 MiB of the region, so a fill that sits in one part of memory still spreads over all.
    package static var copyThreads: Int { min(HostProcessors.online, 8) }

    /// Fresh regions (memfd unless `backings` names another) with every stored page read in
    /// and checked; zero pages are left untouched, so they cost no memory.
    package static func copy(_ chain: SnapshotChain, backings: [String: RegionBacking] = [:]) throws(MemoryLoadError) -> [GuestRegion] {
        try copy(chain, shapes: chain.regions.map(\.shape), backings: backings)
    }

    /// Fresh regions shaped by `shapes` with every page `source` does not know to be zero read
    /// in (a page server's, over the network).
    /// in (a page server's, over the network), by `threads` threads at once, straight into the
    /// regions: pages known to be zero are never touched, so they stay holes.
    package static func copy(
        _ source: any PageSource, shapes: [SnapshotRegionShape], backings: [String: RegionBacking] = [:],
        placeholders: [String: GuestRegion] = [:], threads: Int = copyThreads
    ) throws(MemoryLoadError) -> [GuestRegion] {
        let regions = try empty(shapes: shapes, backings: backings, placeholders: placeholders)
        for (index, region) in regions.enumerated() {
            try copyInParallel(from: source, region: index, into: region, threads: threads)
        }
        return regions
    }

    /// Reads every page of region `index` the source does not know to be zero into `region`, on
    /// this thread (a small region a lazy restore puts in place before its pager).
    package static func copyDataPages(from source: any PageSource, region index: Int, into region: GuestRegion) throws(MemoryLoadError) {
        try copyPages(from: source, region: index, into: region) { !source.isZeroPage(region: index, page: $0) }
    }

    /// Copies every page of `region` the source does not know to be zero: each thread takes the
    /// next batch of the region (a shared cursor) until none is left or one of them failed; the
    /// first failure is the one reported.
    private static func copyInParallel(
        from source: any PageSource, region index: Int, into region: GuestRegion, threads: Int
    ) throws(MemoryLoadError) {
        let batches = (source.pageCount(region: index) + batchPages - 1) / batchPages
        let progress = CopyProgress()
        let work: @Sendable () -> Void = {
            while !progress.failed, let batch = progress.nextBatch(below: batches) {
                let first = PageIndex(batch * batchPages)
                do throws(MemoryLoadError) {
                    try copyPages(from: source, region: index, into: region, from: first, to: first + batchPages) {
                        !source.isZeroPage(region: index, page: $0)
                    }
                } catch {
                    progress.fail(error)
                }
            }
        }
        let helpers = (1..<max(1, min(threads, Int(batches)))).compactMap { number in
            try? NamedThread.spawn(name: "copy-\(number)", role: .pageFault, work)
        }
        work()
        for helper in helpers { helper.join() }
        if let error = progress.failure { throw error }
    }

    /// The threads of one region's copy: the next batch to take, and the first failure.
    private final class CopyProgress: Sendable {
        private let cursor = Atomic<UInt64>(0)
        private let firstFailure = Locked<MemoryLoadError?>(nil)

        func nextBatch(below count: UInt64) -> UInt64? {
            let batch = cursor.wrappingAdd(1, ordering: .relaxed).oldValue
            return batch < count ? batch : nil
        }

        var failed: Bool { firstFailure.withLock { $0 != nil } }
        var failure: MemoryLoadError? { firstFailure.withLock { $0 } }
        func fail(_ error: MemoryLoadError) { firstFailure.withLock { $0 = $0 ?? error } }
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

    /// Fresh, all-zero regions of the given shapes. A region with a placeholder (a standby VMM's
    /// fresh memfd, already where KVM's slots point) is the placeholder itself, claimed; with a
    /// backing of its own it is mapped over the placeholder.
    package static func empty(
        shapes: [SnapshotRegionShape], backings: [String: RegionBacking] = [:], placeholders: [String: GuestRegion] = [:]
    ) throws(MemoryLoadError) -> [GuestRegion] {
        var regions: [GuestRegion] = []
        for stored in shapes {
            if backings[stored.name] == nil, let placeholder = placeholders[stored.name], placeholder.sizeInBytes == stored.sizeInBytes,
               placeholder.claim() {
                regions.append(placeholder)
                continue
            }
            do {
                regions.append(try GuestRegion(name: stored.name, sizeInBytes: stored.sizeInBytes, backing: backings[stored.name] ?? .memfd,
                                               over: placeholders[stored.name]))
            } catch { throw .region(error) }
        }
        return regions
    }

    /// Reads, in batches straight into the region's mapping, every page from `start` up to `end`
    /// (or the region's end) that `wanted` accepts.
    private static func copyPages(
        from source: any PageSource, region index: Int, into region: GuestRegion, from start: PageIndex = 0, to end: PageIndex? = nil,
        wanted: (PageIndex) -> Bool
    ) throws(MemoryLoadError) {
        let pageSize = PageSize.bytes64
        let last = min(end ?? PageIndex(source.pageCount(region: index)), PageIndex(source.pageCount(region: index)))
        var page = start
        while page < last {
            guard wanted(page) else { page += 1; continue }
            var end = page + 1
            while end < last, end - page < batchPages, wanted(end) { end += 1 }
            let read: Void?
            do {
                read = try region.withMutableBytes(at: page.regionOffset, count: Int((end - page) * pageSize)) { (buffer) throws(PageSourceError) in
                    try source.readPages(region: index, firstPage: page, into: &buffer)
                }
            } catch { throw .page(error) }
            guard read != nil else { throw .unsupported("region \(region.name) is smaller than the snapshot's") }
            page = end
        }
    }
}
