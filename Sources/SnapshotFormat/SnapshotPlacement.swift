import GuestMemory

/// Where (part of) a region appears in guest-physical memory, as recorded in the file.
package struct SnapshotPlacement: Sendable, Equatable {
    package let guestAddress: GuestAddress
    package let sizeInBytes: UInt64
    package let regionOffset: RegionOffset

    package init(guestAddress: GuestAddress, sizeInBytes: UInt64, regionOffset: RegionOffset) {
        self.guestAddress = guestAddress
        self.sizeInBytes = sizeInBytes
        self.regionOffset = regionOffset
    }
}
