/// One bit per page of a region: which pages are present, dirty or wanted.
///
/// Bits live in 64-bit words, page i at bit `i % 64` of word `i / 64` (least significant
/// bit first), and serialize as little-endian words, so the bytes match the KVM dirty log
/// and the snapshot file's bitmap.
package struct PageBitmap: Equatable, Sendable {
    /// How many pages the bitmap covers; bits past it are always clear.
    package let pageCount: UInt64
    /// The bits, `wordCount(pageCount)` words.
    package private(set) var words: [UInt64]

    /// An empty bitmap (no bit set) for `pageCount` pages.
    package init(pageCount: UInt64) {
        self.pageCount = pageCount
        words = [UInt64](repeating: 0, count: Int(Self.wordCount(pageCount: pageCount)))
    }

    /// Decodes the serialized form; nil if the length is wrong or a bit past `pageCount` is set.
    package init?(pageCount: UInt64, littleEndianBytes bytes: [UInt8]) {
        let wordCount = Self.wordCount(pageCount: pageCount)
        guard UInt64(bytes.count) == wordCount * 8 else { return nil }
        var words = [UInt64](repeating: 0, count: Int(wordCount))
        // One copy of the bytes into the words, still in their stored (little-endian) order.
        // SAFETY: both buffers hold exactly wordCount * 8 bytes (checked above); neither escapes.
        unsafe words.withUnsafeMutableBytes { target in unsafe bytes.withUnsafeBytes { unsafe target.copyMemory(from: $0) } }
        self.init(pageCount: pageCount, storedWords: words)
    }

    /// The serialized form of a bitmap for `pageCount` pages, filled by `read` straight into words
    /// (no staging copy of the bytes: 256 KiB per 8 GiB of guest on a restore's critical path),
    /// still in the stored byte order: check its CRC (`storedChecksum`), then decode it with
    /// `init(pageCount:storedWords:)`.
    package static func readStoredWords<E: Error>(
        pageCount: UInt64, _ read: (inout MutableRawSpan) throws(E) -> Void
    ) throws(E) -> [UInt64] {
        var words = [UInt64](repeating: 0, count: Int(wordCount(pageCount: pageCount)))
        var elements = words.mutableSpan
        // SAFETY: UInt64 has no padding, so its words' bytes are a plain byte span.
        var bytes = unsafe elements.mutableBytes
        try read(&bytes)
        return words
    }

    /// The CRC32C of stored words' bytes as they lie (the serialized form's checksum).
    package static func storedChecksum(_ words: [UInt64]) -> UInt32 {
        // SAFETY: the buffer does not escape the closure.
        unsafe words.withUnsafeBytes { unsafe CRC32C.checksum($0) }
    }

    /// Decodes words read by `readStoredWords`; nil if a bit past `pageCount` is set.
    package init?(pageCount: UInt64, storedWords: [UInt64]) {
        guard UInt64(storedWords.count) == Self.wordCount(pageCount: pageCount) else { return nil }
        var words = storedWords
        #if _endian(big)
        for w in words.indices { words[w] = UInt64(littleEndian: words[w]) }
        #endif
        let tailBits = pageCount % 64
        if tailBits != 0, let last = words.last, last >> tailBits != 0 { return nil }
        self.pageCount = pageCount
        self.words = words
    }

    /// Words needed for `pageCount` pages.
    package static func wordCount(pageCount: UInt64) -> UInt64 { pageCount / 64 + (pageCount % 64 == 0 ? 0 : 1) }

    /// Serialized length in bytes for `pageCount` pages.
    package static func byteCount(pageCount: UInt64) -> UInt64 { wordCount(pageCount: pageCount) * 8 }

    /// Sets the bit of `page`.
    package mutating func insert(_ page: PageIndex) {
        precondition(page.rawValue < pageCount, "page \(page) beyond \(pageCount) pages")
        words[Int(page.rawValue / 64)] |= 1 << (page.rawValue % 64)
    }

    /// Sets the bits of `bits` in word `index` (pages `64 * index` up).
    package mutating func insert(word bits: UInt64, at index: Int) {
        precondition(index >= 0 && index < words.count, "word \(index) beyond \(words.count) words")
        words[index] |= bits
    }

    /// Clears the bit of `page`.
    package mutating func remove(_ page: PageIndex) {
        precondition(page.rawValue < pageCount, "page \(page) beyond \(pageCount) pages")
        words[Int(page.rawValue / 64)] &= ~(1 << (page.rawValue % 64))
    }

    /// Adds every page of `other`, which must cover the same number of pages.
    package mutating func formUnion(_ other: PageBitmap) {
        precondition(other.pageCount == pageCount, "union of bitmaps of \(pageCount) and \(other.pageCount) pages")
        for index in words.indices { words[index] |= other.words[index] }
    }

    /// True if the bit of `page` is set; false for pages past the end.
    package func contains(_ page: PageIndex) -> Bool {
        guard page.rawValue < pageCount else { return false }
        return words[Int(page.rawValue / 64)] & (1 << (page.rawValue % 64)) != 0
    }

    /// How many pages from `start` on, before `end`, have their bit clear (pages past the bitmap
    /// count as clear), a word at a time: a lazy restore's fill steps over a GiB of zero pages so.
    package func clearCount(from start: PageIndex, before end: PageIndex) -> UInt64 {
        guard start < end else { return 0 }
        var page = start.rawValue
        while page < min(end.rawValue, pageCount) {
            let bits = words[Int(page / 64)] >> (page % 64)
            if bits != 0 { return min(page + UInt64(bits.trailingZeroBitCount), end.rawValue) - start.rawValue }
            page = (page / 64 + 1) * 64
        }
        return end.rawValue - start.rawValue
    }

    /// How many bits are set.
    package var setCount: UInt64 { words.reduce(0) { $0 + UInt64($1.nonzeroBitCount) } }

    /// Calls `body` with each page of `pages` (clipped to the bitmap) whose bit is clear, in order,
    /// a word at a time: a stretch of set bits costs one comparison per 64 pages.
    package func forEachClear<E: Error>(in pages: Range<UInt64>, _ body: (PageIndex) throws(E) -> Void) throws(E) {
        let end = min(pages.upperBound, pageCount)
        var page = pages.lowerBound
        while page < end {
            let wordStart = page / 64 * 64
            let wordEnd = min(wordStart + 64, end)
            // Clear bits from `page` up to `wordEnd` within this word.
            var clear = ~words[Int(wordStart / 64)] & (~UInt64(0) << (page - wordStart))
            if wordEnd - wordStart < 64 { clear &= (UInt64(1) << (wordEnd - wordStart)) - 1 }
            while clear != 0 {
                try body(PageIndex(wordStart + UInt64(clear.trailingZeroBitCount)))
                clear &= clear - 1
            }
            page = wordEnd
        }
    }

    /// Calls `body` with each maximal run of consecutive set bits, in order; allocates nothing.
    package func forEachRun<E: Error>(_ body: (Range<PageIndex>) throws(E) -> Void) throws(E) {
        var runStart: UInt64? = nil
        var page: UInt64 = 0
        for word in words {
            if word == 0 || word == ~0 {
                // Whole word clear or set: extend or close the run in one step.
                if word == 0, let start = runStart {
                    try body(PageIndex(start)..<PageIndex(page))
                    runStart = nil
                } else if word != 0, runStart == nil {
                    runStart = page
                }
                page += 64
                continue
            }
            for bit in 0..<UInt64(64) {
                let set = word & (1 << bit) != 0
                if set, runStart == nil { runStart = page + bit }
                if !set, let start = runStart {
                    try body(PageIndex(start)..<PageIndex(page + bit))
                    runStart = nil
                }
            }
            page += 64
        }
        if let start = runStart { try body(PageIndex(start)..<PageIndex(min(page, pageCount))) }
    }

    /// The little-endian serialized form (`byteCount(pageCount:)` bytes).
    package func littleEndianBytes() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: words.count * 8)
        for (w, word) in words.enumerated() {
            for b in 0..<8 { bytes[w * 8 + b] = UInt8(truncatingIfNeeded: word >> (8 * UInt64(b))) }
        }
        return bytes
    }
}
