/// Where the pages of guest memory come from when they are filled on demand or in bulk:
/// a local snapshot chain now; a page server or an object store later.
///
/// Regions are numbered as the source numbers them; the machine's regions are built in the
/// same order. Both calls run on the userfault handler and fill threads: they must not
/// allocate on success, and must either fill the buffer with the right bytes or throw.
package protocol PageSource: Sendable {
    /// How many regions the source has (numbered from 0).
    var regionCount: Int { get }
    /// Pages in `region`.
    func pageCount(region: Int) -> UInt64
    /// True if `page` of `region` is known to be all zero without reading it (served with UFFDIO_ZEROPAGE).
    func isZeroPage(region: Int, page: UInt64) -> Bool
    /// Fills `buffer` (a whole number of pages) with pages of `region` from `firstPage`, each checked.
    func readPages(region: Int, firstPage: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(PageSourceError)
}
