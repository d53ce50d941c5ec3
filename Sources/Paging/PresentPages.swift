import GuestMemory

/// One bit per page of every region (numbered one after another): set once the page is in
/// memory, by whichever paging thread installed it.
///
/// Only a hint for skipping work — the kernel's EEXIST is the final word on presence — but
/// exact for counting: a bit is set only by the thread whose ioctl installed the page.
struct PresentPages {
    /// Pages covered.
    let count: UInt64

    /// Every page covered.
    var all: Range<PagerPage> { PagerPage(0)..<PagerPage(count) }
    /// Bits set.
    private(set) var setCount: UInt64 = 0
    /// Zero until set, without writing the zeros (see `ZeroedWords`); this ledger's lock covers it.
    private let words: ZeroedWords

    init(count: UInt64) {
        self.count = count
        words = ZeroedWords(count: Int((count + 63) / 64))
    }

    func contains(_ page: PagerPage) -> Bool { words[Int(page.rawValue / 64)] & (1 << (page.rawValue % 64)) != 0 }

    /// Sets the bits of `pages`; returns how many were clear.
    mutating func insert(_ pages: Range<PagerPage>) -> UInt64 {
        var added: UInt64 = 0
        for page in pages where !contains(page) {
            words[Int(page.rawValue / 64)] |= 1 << (page.rawValue % 64)
            added += 1
        }
        setCount += added
        return added
    }

    /// The run of clear bits around `page` inside `window` (which holds `page`); empty if `page` is set.
    func missingRun(around page: PagerPage, within window: Range<PagerPage>) -> Range<PagerPage> {
        guard !contains(page) else { return page..<page }
        var start = page
        while start > window.lowerBound, !contains(start - 1) { start -= 1 }
        var end = page + 1
        while end < window.upperBound, !contains(end) { end += 1 }
        return start..<end
    }

    /// The first run of clear bits in `window`, nil if every bit there is set; skips full words.
    func firstMissingRun(in window: Range<PagerPage>) -> Range<PagerPage>? {
        var page = window.lowerBound
        while page < window.upperBound {
            if page.rawValue % 64 == 0, window.upperBound - page >= 64, words[Int(page.rawValue / 64)] == ~0 {
                page += 64
                continue
            }
            if !contains(page) {
                var end = page + 1
                while end < window.upperBound, !contains(end) { end += 1 }
                return page..<end
            }
            page += 1
        }
        return nil
    }
}
