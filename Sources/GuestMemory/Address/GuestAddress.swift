/// A guest-physical address.
///
/// Kept distinct from host addresses and region offsets so the three cannot be mixed up.
package struct GuestAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    package var rawValue: UInt64

    package init(_ rawValue: UInt64) { self.rawValue = rawValue }

    package static func < (lhs: GuestAddress, rhs: GuestAddress) -> Bool { lhs.rawValue < rhs.rawValue }

    /// This address moved forward by `bytes`; traps on overflow, which only a programming error causes.
    package func advanced(by bytes: UInt64) -> GuestAddress { GuestAddress(rawValue + bytes) }

    package var description: String { "0x" + String(rawValue, radix: 16) }
}

/// A byte offset inside one region's backing (file offset for file-backed regions).
package struct RegionOffset: Hashable, Comparable, Sendable {
    package var rawValue: UInt64

    package init(_ rawValue: UInt64) { self.rawValue = rawValue }

    package static func < (lhs: RegionOffset, rhs: RegionOffset) -> Bool { lhs.rawValue < rhs.rawValue }
}
