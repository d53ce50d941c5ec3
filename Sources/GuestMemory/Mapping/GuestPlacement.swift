/// Where (part of) a region appears in guest-physical memory: the same three numbers for a
/// running VM's mapping, a snapshot's region table and a migration plan.
package struct GuestPlacement: Sendable, Equatable, Hashable {
    package let guestAddress: GuestAddress
    package let sizeInBytes: UInt64
    package let regionOffset: RegionOffset

    package init(guestAddress: GuestAddress, sizeInBytes: UInt64, regionOffset: RegionOffset) {
        self.guestAddress = guestAddress
        self.sizeInBytes = sizeInBytes
        self.regionOffset = regionOffset
    }

    /// One past the last guest-physical byte.
    package var endAddress: GuestAddress { guestAddress.advanced(by: sizeInBytes) }
}
