import LinuxSystem
import Glibc
import GuestMemory
import SnapshotFormat

/// Which pages of live memory may hold data, from the backing's holes alone: a SEEK_DATA /
/// SEEK_HOLE walk costs a few system calls per data range, not a read of every byte, so a
/// manifest of gigabytes is ready at once on the post-copy downtime path.
extension LiveServedMemory {
    /// A set bit for each page of `region` inside a data range of its backing; every page if it
    /// has no descriptor (anonymous or copy-on-write memory) or its file system reports no
    /// holes. A page of zeros inside a data range counts as data (it is sent; that is only
    /// bytes), a hole never does: a hole reads as zeros.
    static func dataPages(of region: GuestRegion) -> PageBitmap {
        let pageSize = PageSize.bytes64
        let pageCount = region.sizeInBytes / pageSize
        var bits = DataBits(pageCount: pageCount)
        guard let fd = region.fileDescriptor else {
            bits.insert(0..<pageCount)
            return bits.bitmap
        }
        let size = off_t(region.sizeInBytes)
        var offset: off_t = 0
        // lseek moves the descriptor's file offset; nothing reads the backing through it (reads
        // use the mapping, pread or pwrite), so that is harmless.
        while offset < size {
            let dataStart = lseek(fd, offset, seekData)
            if dataStart < 0 {
                if errno == ENXIO { break }  // no data past `offset`
                bits.insert(UInt64(offset) / pageSize..<pageCount)  // holes unknown here: all data
                break
            }
            var holeStart = lseek(fd, dataStart, seekHole)
            if holeStart < 0 { holeStart = size }
            holeStart = min(holeStart, size)
            let first = UInt64(dataStart) / pageSize
            let end = min((UInt64(holeStart) + pageSize - 1) / pageSize, pageCount)
            if first < end { bits.insert(first..<end) }
            offset = max(holeStart, dataStart + 1)
        }
        return bits.bitmap
    }

    /// lseek(2) whences SEEK_DATA and SEEK_HOLE (Linux values; hidden behind _GNU_SOURCE in Glibc).
    private static let seekData: CInt = 3
    private static let seekHole: CInt = 4
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
