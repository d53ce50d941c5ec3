import GuestMemory
import LinuxSystem
/// Walks a region in large chunks, the way every whole-image query reads: zero spans are handed
/// over without reading, stored spans are read into one reused buffer (and checked, with the
/// image's `pageCheck`), so a scan costs one pread per chunk and allocates nothing per page.
package struct RegionScan {
    /// Bytes read per call; large enough that system-call cost vanishes, small enough for cache.
    package static let chunkBytes = 4 << 20
    private let buffer: PageBuffer

    package init(chunkBytes: Int = RegionScan.chunkBytes) {
        buffer = PageBuffer(pageCount: (chunkBytes + PageSize.bytes - 1) / PageSize.bytes)
    }

    /// Calls `zero` for each zero span of `region` and `data` for each chunk of stored bytes, in
    /// region order; stops early when either returns false. The bytes are lent for the call only
    /// (the scan reuses its buffer for the next chunk).
    package func forEachChunk(
        of image: MemoryImage, region: Int,
        zero: (_ offset: UInt64, _ count: UInt64) throws(InspectError) -> Bool,
        data: (_ offset: UInt64, _ bytes: RawSpan) throws(InspectError) -> Bool
    ) throws(InspectError) {
        let entry = image.regions[region]
        let capacity = buffer.pageCount * PageSize.bytes
        for span in entry.spans {
            let start = span.pages.lowerBound.regionOffset.rawValue
            let end = min(span.pages.upperBound.regionOffset.rawValue, entry.sizeInBytes)
            guard start < end else { continue }
            guard let file = span.file else {
                if try !zero(start, end - start) { return }
                continue
            }
            var position = start
            while position < end {
                let count = Int(min(UInt64(capacity), end - position))
                let pages = (count + PageSize.bytes - 1) / PageSize.bytes
                try buffer.withMutablePages(pages) { (all) throws(InspectError) in
                    try all.withBytes(in: 0..<count) { (part) throws(InspectError) in
                        try image.files[file].read(into: &part, at: span.fileOffset + (position - start))
                    }
                }
                let more = try buffer.withPages(pages) { (all) throws(InspectError) -> Bool in
                    let part = all.extracting(0..<count)
                    try image.pageCheck?.check(part, at: position, span: span, region: region, in: image)
                    return try data(position, part)
                }
                if !more { return }
                position += UInt64(count)
            }
        }
    }
}
