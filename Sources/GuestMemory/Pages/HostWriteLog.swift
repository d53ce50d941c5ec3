/// The pages of one region that Engram itself wrote: what devices put into guest memory (a disk
/// read's data, a received frame, a used ring's entries).
///
/// KVM's dirty log records only the guest's own writes, so diff snapshots and pre-copy passes
/// take this log beside it, or a restore would show a buffer's old bytes where a device had
/// written. Writers set a page's bit after the bytes are in place (an atomic OR with release
/// order, from any thread); `take` empties each word with acquire order, so whoever takes a bit
/// sees the bytes behind it. Always on: one atomic OR per write is far below the write's cost.
package final class HostWriteLog: Sendable {
    /// Zero without being written, so a region's log costs nothing until a device writes.
    private let words: ZeroedWords
    package let pageCount: UInt64

    package init(pageCount: UInt64) {
        self.pageCount = pageCount
        words = ZeroedWords(count: Int(PageBitmap.wordCount(pageCount: pageCount)))
    }

    /// Records that `[offset, offset+count)` of the region was written. Ranges past the region
    /// are a caller's bug; they are cut at its end.
    @inline(__always)
    package func mark(offset: UInt64, count: Int) {
        guard count > 0 else { return }
        let first = offset >> 12
        let last = min((offset + UInt64(count) - 1) >> 12, pageCount &- 1)
        guard first <= last else { return }
        var page = first
        while page <= last {
            let word = Int(page >> 6)
            let bitsHere = min(64 - (page & 63), last - page + 1)
            let bits = bitsHere == 64 ? UInt64.max : ((UInt64(1) << bitsHere) - 1) << (page & 63)
            words.orRelease(bits, at: word)
            page += bitsHere
        }
    }

    /// Moves every recorded page into `bitmap` (of this region's page count) and clears the log.
    package func take(into bitmap: inout PageBitmap) {
        precondition(bitmap.pageCount == pageCount, "a log of \(pageCount) pages taken into a bitmap of \(bitmap.pageCount)")
        for index in 0..<words.count where words.loadRelaxed(at: index) != 0 {
            let bits = words.takeAcquire(at: index)
            if bits != 0 { bitmap.insert(word: bits, at: index) }
        }
    }

    /// Forgets every recorded page: a new chain or migration log starts from here.
    package func clear() {
        for index in 0..<words.count where words.loadRelaxed(at: index) != 0 {
            _ = words.takeAcquire(at: index)
        }
    }
}
