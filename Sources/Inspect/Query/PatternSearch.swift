import GuestMemory

/// One place a pattern was found.
package struct SearchHit: Sendable, Equatable {
    package var region: Int
    package var offset: UInt64
    /// Where the guest sees it, if the region is placed.
    package var guestAddress: UInt64?
}

/// Finds every occurrence of a byte string in an image, region by region, with glibc's memmem
/// over large chunks; a match across two chunks is found by keeping the previous chunk's tail.
package struct PatternSearch {
    package let pattern: [UInt8]
    /// A pattern with no zero byte cannot match inside zero pages, so they are skipped unread.
    private let mayMatchZeros: Bool

    package static let maximumPatternBytes = 4096

    package init(pattern: [UInt8]) throws(InspectError) {
        guard !pattern.isEmpty else { throw .badArgument("the search pattern is empty") }
        guard pattern.count <= Self.maximumPatternBytes else {
            throw .badArgument("the search pattern is \(pattern.count) bytes; at most \(Self.maximumPatternBytes) are allowed")
        }
        self.pattern = pattern
        self.mayMatchZeros = pattern.contains(0)
    }

    /// Reports hits in address order within each region; stops once `body` returns false.
    package func run(in image: MemoryImage, _ body: (SearchHit) -> Bool) throws(InspectError) {
        let scan = RegionScan()
        let keep = pattern.count - 1
        // The previous chunk's last `keep` bytes, then the current chunk: a window with no seam.
        var window = [UInt8](repeating: 0, count: keep + RegionScan.chunkBytes)
        for region in image.regions.indices {
            var carried = 0          // bytes of the previous chunk at the window's start
            var stopped = false
            /// Searches the window up to `end` (the window's last byte is region offset
            /// `endOffset - 1`), then keeps its tail for the next chunk.
            func searchAndSlide(end: Int, endOffset: UInt64) -> Bool {
                let going = window.withBytes { bytes in
                    search(bytes.extracting(0..<end), region: region, image: image, endOffset: endOffset, body)
                }
                let kept = min(keep, end)
                window.withMutableBytes { $0.moveBytes(from: end - kept, to: 0, count: kept) }
                carried = kept
                return going
            }
            try scan.forEachChunk(of: image, region: region, zero: { (start, length) throws(InspectError) -> Bool in
                guard mayMatchZeros else { carried = 0; return true }
                // Zero runs are searched a chunk at a time, like stored bytes.
                var position = start
                while position < start + length {
                    let part = Int(min(UInt64(RegionScan.chunkBytes), start + length - position))
                    let from = carried
                    window.withMutableBytes { $0.withBytes(in: from..<from + part) { $0.zeroBytes() } }
                    if !searchAndSlide(end: carried + part, endOffset: position + UInt64(part)) {
                        stopped = true
                        return false
                    }
                    position += UInt64(part)
                }
                return true
            }, data: { (start, bytes) throws(InspectError) -> Bool in
                let from = carried
                window.withMutableBytes { $0.copyBytes(from: bytes, toByteOffset: from) }
                if !searchAndSlide(end: carried + bytes.byteCount, endOffset: start + UInt64(bytes.byteCount)) {
                    stopped = true
                    return false
                }
                return true
            })
            if stopped { return }
        }
    }

    /// Reports every match in `window`, whose last byte is region offset `endOffset - 1`.
    private func search(
        _ window: RawSpan, region: Int, image: MemoryImage, endOffset: UInt64, _ body: (SearchHit) -> Bool
    ) -> Bool {
        var position = 0
        while window.byteCount - position >= pattern.count {
            guard let at = window.firstOffset(of: pattern, from: position) else { break }
            let offset = endOffset - UInt64(window.byteCount - at)
            if !body(SearchHit(region: region, offset: offset, guestAddress: image.guestAddress(region: region, offset: offset))) { return false }
            position = at + 1
        }
        return true
    }
}

extension MemoryImage {
    /// The guest-physical address of `offset` in `region`, if one of its ranges holds it.
    package func guestAddress(region: Int, offset: UInt64) -> UInt64? {
        for range in regions[region].ranges where offset >= range.regionOffset && offset < range.regionOffset + range.sizeInBytes {
            return range.guestAddress + (offset - range.regionOffset)
        }
        return nil
    }
}
