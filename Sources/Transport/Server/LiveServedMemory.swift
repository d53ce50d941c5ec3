import LinuxSystem
import GuestMemory
import Paging
import SnapshotFormat

/// A paused VM's live memory, served at a post-copy migration's switch-over: the destination
/// restores from it with `RemotePageSource` and the lazy pager exactly as from a snapshot.
///
/// Pages are copied straight out of the regions' mappings; the guest must stay paused while
/// this is served, so the bytes a client gets are the bytes it would have found. Nothing is
/// stored: which pages hold data is learnt from the backings' holes when this is made (no scan
/// of the bytes, so it stays cheap on the downtime path), and each page's CRC32C is computed
/// from the bytes actually sent. There is no working set to load or store.
package final class LiveServedMemory: ServedMemory {
    package let fingerprint: UInt64
    package let regionShapes: [SnapshotRegionShape]
    package let state: [UInt8]
    private let regions: [GuestRegion]
    /// Per region, the pages that may hold data: everything outside its backing's holes.
    private let data: [PageBitmap]

    /// Serves `regions`, described to clients by `shapes` (the same regions, in the same order:
    /// names and sizes must match), with the machine `state`. `fingerprint` names this source
    /// for this migration (a random number the caller chose), so a destination that reconnects
    /// can tell it still talks to the same paused VM.
    package init(
        regions: [GuestRegion], shapes: [SnapshotRegionShape], state: [UInt8], fingerprint: UInt64
    ) throws(GuestMemoryError) {
        guard regions.count == shapes.count else {
            throw .invalidSize(
                region: regions.map(\.name).joined(separator: ", "), sizeInBytes: 0,
                reason: "\(regions.count) regions are described by \(shapes.count) shapes")
        }
        for (region, shape) in zip(regions, shapes) {
            guard region.name == shape.name, region.sizeInBytes == shape.sizeInBytes else {
                throw .invalidSize(
                    region: region.name, sizeInBytes: region.sizeInBytes,
                    reason: "its shape says region \(shape.name) of \(shape.sizeInBytes) bytes")
            }
            guard region.sizeInBytes % PageSize.bytes64 == 0 else {
                throw .invalidSize(region: region.name, sizeInBytes: region.sizeInBytes, reason: "is not a whole number of 4096-byte pages")
            }
        }
        self.regions = regions
        self.regionShapes = shapes
        self.state = state
        self.fingerprint = fingerprint
        data = regions.map(Self.dataPages(of:))
    }

    package var regionCount: Int { regions.count }

    package func pageCount(region: Int) -> UInt64 { regionShapes[region].pageCount }

    package func dataPages(region: Int) -> PageBitmap { data[region] }

    /// Copies the pages out of the region's mapping; allocates nothing.
    package func readPages(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan) throws(PageSourceError) {
        let source = regions[region]
        let (offset, overflow) = firstPage.rawValue.multipliedReportingOverflow(by: PageSize.bytes64)
        do {
            guard !overflow else {
                throw GuestMemoryError.outsideRegion(name: source.name, offset: RegionOffset(.max), length: UInt64(buffer.byteCount), sizeInBytes: source.sizeInBytes)
            }
            try source.copy(at: RegionOffset(offset), into: &buffer)
        } catch {
            throw .unsupported("pages \(firstPage) to \(firstPage.rawValue &+ UInt64(buffer.byteCount) / PageSize.bytes64) lie outside region \(source.name) (\(pageCount(region: region)) pages)")
        }
    }

    /// Computed from the bytes sent: live memory has no stored CRC, and the guest is paused,
    /// so these are the bytes the destination must end up with.
    package func pageCRC(region: Int, page: PageIndex, bytes: RawSpan) -> UInt32 {
        CRC32C.checksum(bytes)
    }

    /// Live memory has no working set: the destination restores without a prefetch.
    package func loadWorkingSet() throws(PageSourceError) -> WorkingSet? { nil }

    package func storeWorkingSet(_ set: WorkingSet) throws(PageSourceError) {
        throw .unsupported("this server serves a paused VM's live memory (post-copy migration), which keeps no working set; record one against a snapshot instead")
    }
}
