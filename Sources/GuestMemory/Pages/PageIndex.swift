import LinuxSystem

/// The number of a page inside one region (page 0 starts at region offset 0).
///
/// Kept distinct from byte offsets and guest addresses so a page number is never used as a byte count.
/// Strideable, so a `Range<PageIndex>` counts and iterates its pages; a literal reads as a page number.
package struct PageIndex: Hashable, Comparable, Strideable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    package var rawValue: UInt64

    package init(_ rawValue: UInt64) { self.rawValue = rawValue }

    package init(integerLiteral value: UInt64) { rawValue = value }

    package static func < (lhs: PageIndex, rhs: PageIndex) -> Bool { lhs.rawValue < rhs.rawValue }

    // Written out: Strideable's default == goes through `distance`, which a page far from
    // another (`PageIndex(.max)`) must not need.
    package static func == (lhs: PageIndex, rhs: PageIndex) -> Bool { lhs.rawValue == rhs.rawValue }

    package var description: String { String(rawValue) }

    /// The page `count` pages further on.
    package static func + (page: PageIndex, count: UInt64) -> PageIndex { PageIndex(page.rawValue + count) }

    /// Moves `count` pages further on.
    package static func += (page: inout PageIndex, count: UInt64) { page.rawValue += count }

    /// Moves `count` pages back.
    package static func -= (page: inout PageIndex, count: UInt64) { page.rawValue -= count }

    /// The page `count` pages before.
    package static func - (page: PageIndex, count: UInt64) -> PageIndex { PageIndex(page.rawValue - count) }

    /// Pages from `start` up to `end` (which is not before it).
    package static func - (end: PageIndex, start: PageIndex) -> UInt64 { end.rawValue - start.rawValue }

    package func distance(to other: PageIndex) -> Int { Int(truncatingIfNeeded: other.rawValue &- rawValue) }

    package func advanced(by count: Int) -> PageIndex {
        count >= 0 ? PageIndex(rawValue + UInt64(count)) : PageIndex(rawValue - UInt64(-count))
    }

    /// Where the page starts in its region.
    package var regionOffset: RegionOffset { RegionOffset(rawValue * PageSize.bytes64) }
}
