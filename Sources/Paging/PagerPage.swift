import GuestMemory

/// A page in the pager's numbering of all pages (region 0's pages first, then region 1's, ...),
/// as the ledger counts them. Kept apart from `PageIndex`, a page's number inside its region
/// (what page sources take): `PagedRegion.sourcePage` turns one into the other. A literal
/// reads as a page number.
struct PagerPage: Hashable, Comparable, Strideable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    var rawValue: UInt64

    init(_ rawValue: UInt64) { self.rawValue = rawValue }

    init(integerLiteral value: UInt64) { rawValue = value }

    static func < (lhs: PagerPage, rhs: PagerPage) -> Bool { lhs.rawValue < rhs.rawValue }

    // Written out: Strideable's default == goes through `distance`, which a page far from
    // another (`PagerPage(.max)`) must not need.
    static func == (lhs: PagerPage, rhs: PagerPage) -> Bool { lhs.rawValue == rhs.rawValue }

    var description: String { String(rawValue) }

    /// No page: what a thread watches when it watches none.
    static let noPage = PagerPage(.max)

    /// The page `count` pages further on.
    static func + (page: PagerPage, count: UInt64) -> PagerPage { PagerPage(page.rawValue + count) }

    /// Moves `count` pages further on.
    static func += (page: inout PagerPage, count: UInt64) { page.rawValue += count }

    /// Moves `count` pages back.
    static func -= (page: inout PagerPage, count: UInt64) { page.rawValue -= count }

    /// The page `count` pages before.
    static func - (page: PagerPage, count: UInt64) -> PagerPage { PagerPage(page.rawValue - count) }

    /// Pages from `start` up to `end` (which is not before it).
    static func - (end: PagerPage, start: PagerPage) -> UInt64 { end.rawValue - start.rawValue }

    func distance(to other: PagerPage) -> Int { Int(truncatingIfNeeded: other.rawValue &- rawValue) }

    func advanced(by count: Int) -> PagerPage {
        count >= 0 ? PagerPage(rawValue + UInt64(count)) : PagerPage(rawValue - UInt64(-count))
    }
}
