import LinuxSystem
import GuestMemory

extension RegionPageWriter {
    /// Writes region `region` of `chain` as a full snapshot stores it: each page from its owner
    /// (the newest file that stores it), read in runs of up to 8 MiB and checked against its
    /// CRC on the way; pages no file stores, and stored pages that are zero (a diff records a
    /// page zeroed since its parent that way), stay holes with a clear bit. A written page
    /// keeps the CRC its owner recorded, which the read just checked.
    func write(
        composing chain: SnapshotChain, region: Int, at pagesOffset: UInt64,
        bitmap: inout PageBitmap, crcTable: inout LittleEndianBuffer, summary: inout SnapshotWriteSummary
    ) throws(SnapshotFormatError) {
        let pageSize = PageSize.bytes
        let pageCount = chain.regions[region].pageCount
        let chunkPages = UInt64(SnapshotLayout.maximumIOLength / pageSize)
        let ownerCRCs = chain.files.map { $0.regions[region].pageCRCs }
        let buffer = PageBuffer(pageCount: Int(chunkPages))

        var first: UInt64 = 0
        while first < pageCount {
            let count = min(chunkPages, pageCount - first)
            defer { first += count }
            guard (first..<first + count).contains(where: { chain.owner(region: region, page: PageIndex($0)) != SnapshotChain.zeroOwner }) else {
                summary.pagesZero += count
                continue
            }
            try chain.readPages(of: region, from: PageIndex(first), count: Int(count), into: buffer)
            try buffer.withPages(Int(count)) { (chunk) throws(SnapshotFormatError) in
                // Runs of pages to write go out in one pwrite each.
                var runStart = 0
                var runLength = 0
                for i in 0..<Int(count) {
                    let page = first + UInt64(i)
                    let owner = chain.owner(region: region, page: PageIndex(page))
                    if owner == SnapshotChain.zeroOwner || ZeroPageScan.isZeroPage(chunk.extracting(i * pageSize..<(i + 1) * pageSize)) {
                        try writeRun(chunk, pages: runStart..<runStart + runLength, from: first, at: pagesOffset, summary: &summary)
                        runLength = 0
                        summary.pagesZero += 1
                        continue
                    }
                    bitmap.insert(PageIndex(page))
                    crcTable.setU32(ownerCRCs[Int(owner)][Int(page)], at: Int(page) * 4)
                    if runLength == 0 { runStart = i }
                    runLength += 1
                    summary.pagesWritten += 1
                }
                try writeRun(chunk, pages: runStart..<runStart + runLength, from: first, at: pagesOffset, summary: &summary)
            }
        }
    }

    /// Writes pages `pages` of `chunk` (which holds the pages from `first` on) to their places.
    private func writeRun(
        _ chunk: RawSpan, pages: Range<Int>, from first: UInt64, at pagesOffset: UInt64, summary: inout SnapshotWriteSummary
    ) throws(SnapshotFormatError) {
        guard !pages.isEmpty else { return }
        let pageSize = PageSize.bytes
        try FileIO.writeAll(fd, chunk.extracting(pages.lowerBound * pageSize..<pages.upperBound * pageSize),
                            at: pagesOffset + (first + UInt64(pages.lowerBound)) * UInt64(pageSize), path: path)
        summary.bytesWritten += UInt64(pages.count * pageSize)
    }
}
