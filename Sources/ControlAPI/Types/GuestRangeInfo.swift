/// One guest-physical range a memory region is mapped at (part of `MemoryRegionInfo`).
package struct GuestRangeInfo: Codable, Sendable, Equatable {
    /// The guest-physical address where the range starts.
    package var guestAddress: UInt64
    /// The length of the range.
    package var sizeInBytes: UInt64
    /// Offset of this range inside the region's backing.
    package var regionOffset: UInt64

    /// A range of `sizeInBytes` at `guestAddress`, taken from `regionOffset` in the backing.
    package init(guestAddress: UInt64, sizeInBytes: UInt64, regionOffset: UInt64) {
        self.guestAddress = guestAddress
        self.sizeInBytes = sizeInBytes
        self.regionOffset = regionOffset
    }
}
