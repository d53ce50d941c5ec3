import LinuxSystem
import GuestMemory
import SnapshotFormat

/// Which pages of live memory may hold data, from the backing's holes alone
/// (`GuestRegion.dataPages`): a SEEK_DATA / SEEK_HOLE walk costs a few system calls per data
/// range, not a read of every byte, so a manifest of gigabytes is ready at once on the
/// post-copy downtime path.
extension LiveServedMemory {
    /// A set bit for each page of `region` inside a data range of its backing; every page if it
    /// has no descriptor (anonymous or copy-on-write memory) or its file system reports no
    /// holes. A page of zeros inside a data range counts as data (it is sent; that is only
    /// bytes), a hole never does: a hole reads as zeros.
    static func dataPages(of region: GuestRegion) -> PageBitmap {
        var bits = DataBits(pageCount: region.sizeInBytes / PageSize.bytes64)
        for range in region.dataPages() { bits.insert(range.lowerBound.rawValue..<range.upperBound.rawValue) }
        return bits.bitmap
    }
}

/// A data bitmap built a byte (8 pages) at a time, so marking a gigabyte of data costs
/// thousands of steps, not a quarter of a million; laid out as the manifest's bitmap
/// (bit i of byte i / 8 is page i).
private struct DataBits {
    let pageCount: UInt64
    var bytes: [UInt8]

    init(pageCount: UInt64) {
        self.pageCount = pageCount
        bytes = [UInt8](repeating: 0, count: Int(PageBitmap.byteCount(pageCount: pageCount)))
    }

    /// Sets the bits of `pages` (inside the region).
    mutating func insert(_ pages: Range<UInt64>) {
        var page = pages.lowerBound
        let end = min(pages.upperBound, pageCount)
        while page < end {
            let bit = page % 8
            let count = min(8 - bit, end - page)
            bytes[Int(page / 8)] |= UInt8(truncatingIfNeeded: ((1 << count) - 1) << bit)
            page += count
        }
    }

    var bitmap: PageBitmap {
        // Bits are set only below `pageCount`, and `bytes` has the serialized length.
        guard let bitmap = PageBitmap(pageCount: pageCount, littleEndianBytes: bytes) else {
            preconditionFailure("a data bitmap of \(pageCount) pages has a bit past its end")
        }
        return bitmap
    }
}
