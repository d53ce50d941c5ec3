import LinuxSystem
import Glibc
import GuestMemory

/// Writes one region's pages into a snapshot file being written, and fills in the region's
/// bitmap and CRC table as it goes; part of `SnapshotWriter`.
///
/// Stored pages go out in runs of up to 8 MiB with pwrite; all-zero pages are never written,
/// so they stay holes.
struct RegionPageWriter {
    /// The temporary file being written.
    let fd: CInt
    /// Its path, for messages.
    let path: String

    /// Scans `region` page by page and writes runs of stored pages straight from its mapping:
    /// every non-zero page, or (`dirty` given, a diff) every dirty page, a zero one as a set
    /// bit with the zero-page CRC and no bytes.
    func write(
        _ region: GuestRegion, at pagesOffset: UInt64, dirty: PageBitmap?,
        bitmap: inout PageBitmap, crcTable: inout LittleEndianBuffer, summary: inout SnapshotWriteSummary
    ) throws(SnapshotFormatError) {
        let pageSize = PageSize.bytes64
        let pageCount = region.sizeInBytes / pageSize
        let maximumRunPages = UInt64(SnapshotLayout.maximumIOLength) / pageSize
        let dataRanges = dataPageRanges(of: region)
        let zeroPageCRC = SnapshotWriter.zeroPageCRC
        do {
            // SAFETY: `memory` is the region's whole mapping; it is used only inside the closure.
            try unsafe region.withUnsafeBytes(at: RegionOffset(0), count: Int(region.sizeInBytes)) { memory in
                var runStart: UInt64 = 0
                var runLength: UInt64 = 0
                var rangeIndex = 0
                func flush() throws(SnapshotFormatError) {
                    guard runLength > 0 else { return }
                    let start = Int(runStart * pageSize)
                    let count = Int(runLength * pageSize)
                    // SAFETY: the run lies inside the region's mapping, whose view `memory` covers all of it.
                    try unsafe FileIO.writeAll(
                        fd, UnsafeRawBufferPointer(rebasing: memory[start..<start + count]), at: pagesOffset + runStart * pageSize, path: path)
                    summary.bytesWritten += UInt64(count)
                    runLength = 0
                }
                for page in 0..<pageCount {
                    let index = PageIndex(page)
                    if let dirty, !dirty.contains(index) {
                        try flush()
                        summary.pagesSkipped += 1
                        continue
                    }
                    while rangeIndex < dataRanges.count, dataRanges[rangeIndex].upperBound <= page { rangeIndex += 1 }
                    let hasData = rangeIndex < dataRanges.count && dataRanges[rangeIndex].contains(page)
                    let start = Int(page * pageSize)
                    // SAFETY: the page lies inside `memory`; the view does not escape this iteration.
                    let bytes = unsafe UnsafeRawBufferPointer(rebasing: memory[start..<start + Int(pageSize)])
                    if unsafe !hasData || ZeroPageScan.isZeroPage(bytes) {
                        try flush()
                        summary.pagesZero += 1
                        if dirty != nil {
                            bitmap.insert(index)
                            crcTable.setU32(zeroPageCRC, at: Int(page) * 4)
                        }
                        continue
                    }
                    bitmap.insert(index)
                    crcTable.setU32(unsafe CRC32C.checksum(bytes), at: Int(page) * 4)
                    if runLength == 0 { runStart = page }
                    runLength += 1
                    summary.pagesWritten += 1
                    if runLength == maximumRunPages { try flush() }
                }
                try flush()
            }
        } catch let error as SnapshotFormatError {
            throw error
        } catch let error as GuestMemoryError {
            throw .memory(path: path, error)
        } catch {
            throw .unwritable(path: path, reason: "\(error)")
        }
    }


    /// Page ranges of the region's backing that may hold data (SEEK_DATA/SEEK_HOLE); pages
    /// outside them are holes, zero without being touched. The whole region if unknown.
    private func dataPageRanges(of region: GuestRegion) -> [Range<UInt64>] {
        let pageSize = PageSize.bytes64
        let pageCount = region.sizeInBytes / pageSize
        guard let fd = region.fileDescriptor else { return [0..<pageCount] }
        var ranges: [Range<UInt64>] = []
        var offset: off_t = 0
        let size = off_t(region.sizeInBytes)
        while offset < size {
            let dataStart = lseek(fd, offset, FileIO.seekData)
            if dataStart < 0 {
                if errno == ENXIO { break }
                return [0..<pageCount]
            }
            var holeStart = lseek(fd, dataStart, FileIO.seekHole)
            if holeStart < 0 { return [0..<pageCount] }
            holeStart = min(holeStart, size)
            let first = UInt64(dataStart) / pageSize
            let end = min((UInt64(holeStart) + pageSize - 1) / pageSize, pageCount)
            if first < end { ranges.append(first..<end) }
            offset = holeStart
        }
        return ranges
    }
}
