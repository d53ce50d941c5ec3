import SnapshotFormat

/// A local snapshot chain serves pages straight from its files (pread, CRC checked).
extension SnapshotChain: PageSource {
    package var regionCount: Int { regions.count }

    package func pageCount(region: Int) -> UInt64 { regions[region].pageCount }

    package func isZeroPage(region: Int, page: UInt64) -> Bool { owner(region: region, page: page) == SnapshotChain.zeroOwner }

    package func readPages(region: Int, firstPage: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(PageSourceError) {
        do { try unsafe readPages(of: region, from: firstPage, into: buffer) } catch { throw .snapshot(error) }
    }
}
