import GuestMemory

/// Where a pre-copy's pages go: the control connection itself (`PageSender`), or page channels
/// beside it (`PageChannels`). Both take a pass as the same chunks, walked once here; counters
/// are totals since the stream was made.
protocol PageStream: AnyObject {
    var regions: [GuestRegion] { get }
    var pagesSent: UInt64 { get }
    var zeroPagesSent: UInt64 { get }
    /// Bytes of pages and their frames, on every connection the pages take.
    var bytesSent: UInt64 { get }
    /// Called now and then during a pass, on the migration thread.
    var progress: () -> Void { get set }

    /// Sends (or hands on) the pages `chunk` names.
    func send(_ chunk: PageChunk) throws
    /// Ends pass `pass`: everything sent, then PASS_END (on every connection the pages take).
    func endPass(_ pass: UInt32) throws
}

/// Up to 2048 pages (8 MiB) of one region as a bit mask: how a pass goes out, chunk by chunk.
/// A fixed-size value, so handing one to another thread allocates nothing.
struct PageChunk {
    static let pages: UInt64 = 2048
    static let words = 32

    var region: Int
    /// The page bit 0 stands for (a multiple of `pages`).
    var first: UInt64
    var mask = InlineArray<32, UInt64>(repeating: 0)
    /// Zero pages are named (later passes) or skipped (the first: the destination starts zero).
    var announceZero: Bool

    init(region: Int, first: UInt64, announceZero: Bool) {
        self.region = region
        self.first = first
        self.announceZero = announceZero
    }

    mutating func insert(_ page: UInt64) {
        let bit = page - first
        mask[Int(bit / 64)] |= 1 << (bit % 64)
    }

    /// Each page set, in order.
    func forEachPage<E: Error>(_ body: (PageIndex) throws(E) -> Void) throws(E) {
        for word in 0..<Self.words {
            var bits = mask[word]
            while bits != 0 {
                try body(PageIndex(first + UInt64(word * 64 + bits.trailingZeroBitCount)))
                bits &= bits - 1
            }
        }
    }
}

extension PageStream {
    /// The first pass: every page of every region that may hold data (a file's holes are skipped
    /// unread), except pages already known to be dirty again, which the next pass sends anyway.
    /// Every `refreshPages` pages or so, `refresh` is asked for the pages dirtied meanwhile, which
    /// join `dirty`: a page the guest rewrites ahead of this pass goes over the wire once, not twice.
    func sendAll(dirty: inout [String: PageBitmap], refreshPages: Int, refresh: () throws -> [String: PageBitmap]) throws {
        var sinceRefresh = 0
        for (index, region) in regions.enumerated() {
            for range in region.dataPages() {
                var page = range.lowerBound.rawValue
                while page < range.upperBound.rawValue {
                    var chunk = PageChunk(region: index, first: page / PageChunk.pages * PageChunk.pages, announceZero: false)
                    let end = min(range.upperBound.rawValue, chunk.first + PageChunk.pages)
                    let skip = dirty[region.name]
                    for candidate in page..<end where skip?.contains(PageIndex(candidate)) != true { chunk.insert(candidate) }
                    try send(chunk)
                    sinceRefresh += Int(end - page)
                    if sinceRefresh >= refreshPages {
                        sinceRefresh = 0
                        dirty = dirty.merging(try refresh()) { MigrationSource.union($0, $1) }
                    }
                    page = end
                }
            }
        }
    }

    /// A later pass: the pages set in `dirty` (per region name); zero ones as zero.
    func send(dirty: [String: PageBitmap]) throws {
        for (index, region) in regions.enumerated() {
            guard let words = dirty[region.name]?.words else { continue }
            for start in stride(from: 0, to: words.count, by: PageChunk.words) {
                var chunk = PageChunk(region: index, first: UInt64(start) * 64, announceZero: true)
                var any: UInt64 = 0
                for word in 0..<min(PageChunk.words, words.count - start) {
                    chunk.mask[word] = words[start + word]
                    any |= words[start + word]
                }
                if any != 0 { try send(chunk) }
            }
        }
    }
}
