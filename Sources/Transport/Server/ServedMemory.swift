import GuestMemory
import Paging
import SnapshotFormat

/// What a page server serves: a snapshot chain on disk (`engram serve`), or a paused VM's live
/// memory at a post-copy migration's switch-over (`LiveServedMemory`). Both answer the same
/// page protocol, so a destination restores from either with `RemotePageSource` unchanged.
///
/// `readPages` and `pageCRC` run on every READ and LIST the server answers: like
/// `PageSource.readPages`, they must not allocate on success. Everything else serves the
/// handshake and the manifest, once per connection.
package protocol ServedMemory: Sendable {
    /// Names these contents; a client that reconnects checks it to know it still gets the same memory.
    var fingerprint: UInt64 { get }
    /// How many regions there are (numbered from 0, in the manifest's order).
    var regionCount: Int { get }
    /// Each region's name, size and guest placements, in order.
    var regionShapes: [SnapshotRegionShape] { get }
    /// Pages in `region`.
    func pageCount(region: Int) -> UInt64
    /// A set bit for each page of `region` that may hold data; a clear bit promises a zero page,
    /// which the client fills itself, so it never crosses the wire.
    func dataPages(region: Int) -> PageBitmap
    /// The machine state a restore loads before the guest runs.
    var state: [UInt8] { get }
    /// Fills `buffer` (a whole number of pages, in range: the session checked) with pages of
    /// `region` from `firstPage`.
    func readPages(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan) throws(PageSourceError)
    /// The CRC32C sent with `page` of `region`, whose bytes as `readPages` just read them are
    /// `bytes`: a snapshot sends the CRC it stored (which it checked the read against), live
    /// memory the CRC of `bytes`.
    func pageCRC(region: Int, page: PageIndex, bytes: RawSpan) -> UInt32
    /// The stored working set, nil if there is none (or the memory cannot keep one).
    func loadWorkingSet() throws(PageSourceError) -> WorkingSet?
    /// Stores `set`, replacing any earlier one; throws if it does not fit or cannot be kept.
    func storeWorkingSet(_ set: WorkingSet) throws(PageSourceError)
}
