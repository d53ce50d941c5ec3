import Glibc

/// Where a file holds data, as byte ranges (SEEK_DATA/SEEK_HOLE): what a reader of a sparse
/// file needs to look only at data, never at holes. Measured on ext4 here: 16 data runs of a
/// 1 GiB snapshot take 0.05 to 0.09 ms, freshly written or not (FIEMAP was no faster).
package enum DataExtents {
    /// lseek's whence values (Linux), which glibc only declares with _GNU_SOURCE.
    package static let seekData: CInt = 3, seekHole: CInt = 4

    /// The ranges of `[start, end)` that hold data (rounded out to the file system's blocks).
    package static func ranges(of fd: CInt, from start: UInt64, to end: UInt64, path: String) throws(SystemError) -> [Range<UInt64>] {
        var ranges: [Range<UInt64>] = []
        var offset = start
        while offset < end {
            let data = lseek(fd, off_t(offset), seekData)
            guard data >= 0 else {
                if errno == ENXIO { break }  // no data past `offset`
                throw .last("lseek (SEEK_DATA)", on: path)
            }
            guard UInt64(data) < end else { break }
            let hole = lseek(fd, data, seekHole)
            guard hole >= 0 else { throw .last("lseek (SEEK_HOLE)", on: path) }
            ranges.append(UInt64(data)..<min(UInt64(hole), end))
            offset = max(UInt64(hole), offset + 1)
        }
        return ranges
    }
}
