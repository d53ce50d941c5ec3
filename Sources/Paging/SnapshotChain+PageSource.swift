import GuestMemory
import SnapshotFormat

/// A local snapshot chain serves pages straight from its files (pread, CRC checked), and keeps
/// its working set beside the top file.
extension SnapshotChain: PageSource {
    package var regionCount: Int { regions.count }

    package func pageCount(region: Int) -> UInt64 { regions[region].pageCount }

    package func isZeroPage(region: Int, page: PageIndex) -> Bool { owner(region: region, page: page) == SnapshotChain.zeroOwner }

    package func zeroPageCount(region: Int, from start: PageIndex, before end: PageIndex) -> UInt64 {
        zeroPageCount(of: region, from: start, before: end)
    }

    package func readPages(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan) throws(PageSourceError) {
        do { try readPages(of: region, from: firstPage, into: &buffer) } catch { throw .snapshot(error) }
    }

    package func loadWorkingSet() throws(PageSourceError) -> WorkingSet? {
        guard let set = try WorkingSetFile.read(WorkingSetFile.path(forSnapshot: path)) else { return nil }
        try set.check(against: self, fingerprint: fingerprint)
        return set
    }

    package func storeWorkingSet(_ set: WorkingSet) throws(PageSourceError) {
        try set.check(against: self, fingerprint: fingerprint)
        try WorkingSetFile.write(set, to: WorkingSetFile.path(forSnapshot: path))
    }

    /// Names this chain's contents: the CRC32C of every file's header (which holds each
    /// region's bitmap and CRC-table places and the state's CRC) and of the top file's state.
    /// A working set or a page server's client checks it to know it has the same snapshot.
    package var fingerprint: UInt64 {
        var headers: UInt32 = 0
        for file in files { headers = CRC32C.update(headers, bytes: file.header.encode()) }
        return UInt64(headers) << 32 | UInt64(CRC32C.checksum(state))
    }
}
