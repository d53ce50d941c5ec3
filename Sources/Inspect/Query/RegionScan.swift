import LinuxSystem
/// Walks a region in large chunks, the way every whole-image query reads: zero spans are handed
/// over without reading, stored spans are read into one reused buffer (and checked, with the
/// image's `pageCheck`), so a scan costs one pread per chunk and allocates nothing per page.
@safe package struct RegionScan: ~Copyable {
    /// Bytes read per call; large enough that system-call cost vanishes, small enough for cache.
    package static let chunkBytes = 4 << 20
    private let buffer: UnsafeMutableRawBufferPointer

    package init(chunkBytes: Int = RegionScan.chunkBytes) {
        // SAFETY: allocated here, freed in deinit, never handed out beyond a call.
        buffer = unsafe UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 4096)
    }

    deinit { unsafe buffer.deallocate() }

    /// What the body sees: a chunk at `offset` in the region, either zero or its bytes. The
    /// bytes are lent for the call only (the scan reuses its buffer for the next chunk).
    @safe package enum Chunk {
        case zero(offset: UInt64, count: UInt64)
        case data(offset: UInt64, bytes: UnsafeRawBufferPointer)
    }

    /// Calls `body` for every chunk of `region` in order; stops early when it returns false.
    package func forEachChunk(
        of image: MemoryImage, region: Int, _ body: (Chunk) throws(InspectError) -> Bool
    ) throws(InspectError) {
        let entry = image.regions[region]
        for span in entry.spans {
            let start = span.pages.lowerBound.regionOffset.rawValue
            let end = min(span.pages.upperBound.regionOffset.rawValue, entry.sizeInBytes)
            guard start < end else { continue }
            guard let file = span.file else {
                if try !body(.zero(offset: start, count: end - start)) { return }
                continue
            }
            var position = start
            while position < end {
                let count = Int(min(UInt64(buffer.count), end - position))
                // SAFETY: the first `count` bytes of our own buffer.
                let part = unsafe UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
                try unsafe image.files[file].read(into: part, at: span.fileOffset + (position - start))
                // SAFETY: `part` was just filled and stays alive for the check, which keeps no pointer to it.
                try unsafe image.pageCheck?.check(UnsafeRawBufferPointer(part), at: position, span: span, region: region, in: image)
                if try unsafe !body(.data(offset: position, bytes: UnsafeRawBufferPointer(part))) { return }
                position += UInt64(count)
            }
        }
    }
}
