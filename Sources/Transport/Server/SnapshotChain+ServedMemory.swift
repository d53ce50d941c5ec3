import GuestMemory
import Paging
import SnapshotFormat

/// `engram serve`: a snapshot chain serves its files' pages (read and checked by its
/// `PageSource` side), the CRCs they stored, and the working set kept beside its top file.
/// `fingerprint`, `regionCount`, `pageCount`, `state`, `readPages` and the working set come
/// from `SnapshotChain` and its `PageSource` conformance.
extension SnapshotChain: ServedMemory {
    package var regionShapes: [SnapshotRegionShape] { regions.map(\.shape) }

    package func dataPages(region: Int) -> PageBitmap { storedPages(region: region) }

    /// The CRC the owning file stored: `readPages` already checked `bytes` against it.
    package func pageCRC(region: Int, page: PageIndex, bytes: RawSpan) -> UInt32 {
        storedCRC(region: region, page: page)
    }
}
