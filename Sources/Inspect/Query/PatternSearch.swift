import CLinux
import Glibc

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
        let window = unsafe UnsafeMutableRawBufferPointer.allocate(byteCount: keep + RegionScan.chunkBytes, alignment: 64)
        defer { unsafe window.deallocate() }
        for region in image.regions.indices {
            var carried = 0          // bytes of the previous chunk at the window's start
            var stopped = false
            try scan.forEachChunk(of: image, region: region) { (chunk) throws(InspectError) -> Bool in
                let offset: UInt64, count: Int
                switch chunk {
                case .zero(let start, let length):
                    guard mayMatchZeros else { carried = 0; return true }
                    // Zero runs are searched a chunk at a time, like stored bytes.
                    var position = start
                    while position < start + length {
                        let part = Int(min(UInt64(RegionScan.chunkBytes), start + length - position))
                        // SAFETY: [carried, carried + part) lies inside the window.
                        unsafe UnsafeMutableRawBufferPointer(rebasing: window[carried..<carried + part]).initializeMemory(as: UInt8.self, repeating: 0)
                        if unsafe !searchWindow(region: region, image: image, windowEnd: carried + part, endOffset: position + UInt64(part), window: window, body) {
                            stopped = true
                            return false
                        }
                        carried = unsafe slideTail(window, end: carried + part, keep: keep)
                        position += UInt64(part)
                    }
                    return true
                case .data(let start, let bytes):
                    offset = start
                    count = bytes.count
                    // SAFETY: copies the chunk into the window after the carried tail.
                    unsafe UnsafeMutableRawBufferPointer(rebasing: window[carried..<carried + count]).copyMemory(from: bytes)
                }
                if unsafe !searchWindow(region: region, image: image, windowEnd: carried + count, endOffset: offset + UInt64(count), window: window, body) {
                    stopped = true
                    return false
                }
                carried = unsafe slideTail(window, end: carried + count, keep: keep)
                return true
            }
            if stopped { return }
        }
    }

    /// Searches window[0..<windowEnd], whose last byte is region offset `endOffset - 1`.
    private func searchWindow(
        region: Int, image: MemoryImage, windowEnd: Int, endOffset: UInt64,
        window: UnsafeMutableRawBufferPointer, _ body: (SearchHit) -> Bool
    ) -> Bool {
        let base = unsafe UnsafeRawPointer(window.baseAddress!)
        var position = 0
        return unsafe pattern.withUnsafeBytes { needle in
            while windowEnd - position >= pattern.count {
                // SAFETY: [position, windowEnd) lies inside the window; the needle outlives the call.
                guard let found = unsafe clinux_memmem(base + position, windowEnd - position, needle.baseAddress!, needle.count) else { break }
                let at = unsafe UnsafeRawPointer(found) - base
                let offset = endOffset - UInt64(windowEnd - at)
                if !body(SearchHit(region: region, offset: offset, guestAddress: image.guestAddress(region: region, offset: offset))) { return false }
                position = at + 1
            }
            return true
        }
    }

    /// Moves the last `keep` bytes of window[0..<end] to its start; returns how many were kept.
    private func slideTail(_ window: UnsafeMutableRawBufferPointer, end: Int, keep: Int) -> Int {
        let kept = min(keep, end)
        guard kept > 0 else { return 0 }
        // SAFETY: both ranges lie inside the window; memmove allows overlap.
        unsafe memmove(window.baseAddress!, window.baseAddress! + (end - kept), kept)
        return kept
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
