/// The number of a page inside one region (page 0 starts at region offset 0).
///
/// Kept distinct from byte offsets and guest addresses so a page number is never used as a byte count.
package struct PageIndex: Hashable, Comparable, Sendable, CustomStringConvertible {
    package var rawValue: UInt64

    package init(_ rawValue: UInt64) { self.rawValue = rawValue }

    package static func < (lhs: PageIndex, rhs: PageIndex) -> Bool { lhs.rawValue < rhs.rawValue }

    package var description: String { String(rawValue) }
}
