import LinuxSystem
import GuestMemory

/// What an export wrote.
package struct ExportSummary: Sendable, Equatable {
    /// The output's apparent size.
    package var sizeInBytes: UInt64
    /// Bytes actually written (zero pages are left as holes).
    package var writtenBytes: UInt64
}

/// Writes guest-physical memory as one flat file: byte N of the file is guest-physical address N,
/// from 0 to the end of the highest range; gaps and zero pages are holes. Regions the guest does
/// not see at a known address (e.g. QEMU's ROM blocks) are not part of it.
package enum RawExporter {
    package static func write(_ image: MemoryImage, to path: String) throws(InspectError) -> ExportSummary {
        let end = image.regions.flatMap(\.ranges).map(\.guestEnd).max() ?? 0
        guard end > 0 else { throw .missing(what: "guest-physical memory", reason: "no region of \(image.source) is placed in guest-physical memory") }
        let output = try ExportFile(path: path)
        try output.setSize(end)
        var written: UInt64 = 0
        let scan = RegionScan()
        for region in image.regions.indices where !image.regions[region].ranges.isEmpty {
            try scan.forEachChunk(of: image, region: region, zero: { (_, _) throws(InspectError) -> Bool in true }, data: { (offset, bytes) throws(InspectError) -> Bool in
                written += try writePlaced(bytes, regionOffset: offset, region: image.regions[region], to: output)
                return true
            })
        }
        try output.commit()
        return ExportSummary(sizeInBytes: end, writtenBytes: written)
    }

    /// Writes the non-zero pages of a chunk wherever the region's ranges place them.
    static func writePlaced(_ bytes: RawSpan, regionOffset: UInt64, region: ImageRegion, to output: ExportFile) throws(InspectError) -> UInt64 {
        var written: UInt64 = 0
        let pageSize = PageSize.bytes
        var start = 0
        while start < bytes.byteCount {
            let end = min(start + pageSize, bytes.byteCount)
            let page = bytes.extracting(start..<end)
            let offset = regionOffset + UInt64(start)
            if !ZeroPageScan.isZero(page) {
                for range in region.ranges where offset >= range.regionOffset && offset < range.regionOffset + range.sizeInBytes {
                    let length = Int(min(UInt64(page.byteCount), range.regionOffset + range.sizeInBytes - offset))
                    try output.write(page.extracting(0..<length), at: range.guestAddress + (offset - range.regionOffset))
                    written += UInt64(length)
                }
            }
            start = end
        }
        return written
    }
}
