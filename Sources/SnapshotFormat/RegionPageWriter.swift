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
        let dataRanges = region.dataPages().map { $0.lowerBound.rawValue..<$0.upperBound.rawValue }
        let zeroPageCRC = SnapshotWriter.zeroPageCRC
        // The whole region's mapping: its range is always inside the region.
        _ = try region.withBytes(at: RegionOffset(0), count: Int(region.sizeInBytes)) { (memory) throws(SnapshotFormatError) in
            var run: Range<UInt64> = 0..<0
            var rangeIndex = 0
            for page in 0..<pageCount {
                let index = PageIndex(page)
                if let dirty, !dirty.contains(index) {
                    try writeRun(memory, pages: run, at: pagesOffset, summary: &summary)
                    run = page..<page
                    summary.pagesSkipped += 1
                    continue
                }
                while rangeIndex < dataRanges.count, dataRanges[rangeIndex].upperBound <= page { rangeIndex += 1 }
                let hasData = rangeIndex < dataRanges.count && dataRanges[rangeIndex].contains(page)
                let start = Int(page * pageSize)
                let bytes = memory.extracting(start..<start + Int(pageSize))
                if !hasData || ZeroPageScan.isZeroPage(bytes) {
                    try writeRun(memory, pages: run, at: pagesOffset, summary: &summary)
                    run = page..<page
                    summary.pagesZero += 1
                    if dirty != nil {
                        bitmap.insert(index)
                        crcTable.setU32(zeroPageCRC, at: Int(page) * 4)
                    }
                    continue
                }
                bitmap.insert(index)
                crcTable.setU32(CRC32C.checksum(bytes), at: Int(page) * 4)
                if run.isEmpty { run = page..<page }
                run = run.lowerBound..<page + 1
                summary.pagesWritten += 1
                if UInt64(run.count) == maximumRunPages {
                    try writeRun(memory, pages: run, at: pagesOffset, summary: &summary)
                    run = page + 1..<page + 1
                }
            }
            try writeRun(memory, pages: run, at: pagesOffset, summary: &summary)
        }
    }
}

extension RegionPageWriter {
    /// Writes the stored pages `pages` of `memory` (a region's whole mapping) to their places.
    func writeRun(_ memory: RawSpan, pages: Range<UInt64>, at pagesOffset: UInt64, summary: inout SnapshotWriteSummary) throws(SnapshotFormatError) {
        guard !pages.isEmpty else { return }
        let pageSize = PageSize.bytes64
        try FileIO.writeAll(fd, memory.extracting(Int(pages.lowerBound * pageSize)..<Int(pages.upperBound * pageSize)),
                            at: pagesOffset + pages.lowerBound * pageSize, path: path)
        summary.bytesWritten += UInt64(pages.count) * pageSize
    }
}
