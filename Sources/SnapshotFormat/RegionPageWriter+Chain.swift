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
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: SnapshotLayout.maximumIOLength, alignment: pageSize)
        // SAFETY: the buffer is used only by this call and freed once, on every way out of it.
        defer { unsafe buffer.deallocate() }

        var first: UInt64 = 0
        while first < pageCount {
            let count = min(chunkPages, pageCount - first)
            defer { first += count }
            guard (first..<first + count).contains(where: { chain.owner(region: region, page: PageIndex($0)) != SnapshotChain.zeroOwner }) else {
                summary.pagesZero += count
                continue
            }
            // SAFETY: `count` pages fit the 8 MiB buffer; the view does not outlive this iteration.
            let chunk = unsafe UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(count) * pageSize])
            try unsafe chain.readPages(of: region, from: PageIndex(first), into: chunk)

            var runStart = 0
            var runLength = 0
            func flush() throws(SnapshotFormatError) {
                guard runLength > 0 else { return }
                // SAFETY: the run lies inside `chunk`, which lives until this iteration ends.
                let run = unsafe UnsafeRawBufferPointer(rebasing: chunk[runStart * pageSize..<(runStart + runLength) * pageSize])
                try unsafe FileIO.writeAll(fd, run, at: pagesOffset + (first + UInt64(runStart)) * UInt64(pageSize), path: path)
                summary.bytesWritten += UInt64(runLength * pageSize)
                runLength = 0
            }
            for i in 0..<Int(count) {
                let page = first + UInt64(i)
                let owner = chain.owner(region: region, page: PageIndex(page))
                // SAFETY: page i lies inside `chunk`; the view does not escape this iteration.
                let bytes = unsafe UnsafeRawBufferPointer(rebasing: chunk[i * pageSize..<(i + 1) * pageSize])
                if unsafe owner == SnapshotChain.zeroOwner || ZeroPageScan.isZeroPage(bytes) {
                    try flush()
                    summary.pagesZero += 1
                    continue
                }
                bitmap.insert(PageIndex(page))
                crcTable.setU32(ownerCRCs[Int(owner)][Int(page)], at: Int(page) * 4)
                if runLength == 0 { runStart = i }
                runLength += 1
                summary.pagesWritten += 1
            }
            try flush()
        }
    }
}
