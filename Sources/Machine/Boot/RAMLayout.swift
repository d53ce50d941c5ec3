import GuestMemory
import SnapshotFormat

/// Where main RAM goes: below 3 GiB, and the rest from 4 GiB, as one backing at two file offsets.
package enum RAMLayout {
    /// Where a `ram` region of `size` bytes goes, as snapshot placements (guest address, size, region offset).
    package static func placements(forSize size: UInt64) -> [GuestPlacement] {
        let low = min(size, X86Layout.lowRAMMaximum)
        var result = [GuestPlacement(guestAddress: GuestAddress(0), sizeInBytes: low, regionOffset: RegionOffset(0))]
        if size > low {
            result.append(GuestPlacement(guestAddress: GuestAddress(X86Layout.highRAMStart), sizeInBytes: size - low, regionOffset: RegionOffset(low)))
        }
        return result
    }

    /// The guest-physical mappings of a `ram` region of `region.sizeInBytes` bytes.
    package static func mappings(for region: GuestRegion) -> [GuestMapping] {
        let low = min(region.sizeInBytes, X86Layout.lowRAMMaximum)
        var result = [GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: low, region: region, regionOffset: RegionOffset(0))]
        if region.sizeInBytes > low {
            result.append(GuestMapping(guestAddress: GuestAddress(X86Layout.highRAMStart), sizeInBytes: region.sizeInBytes - low,
                                       region: region, regionOffset: RegionOffset(low)))
        }
        return result
    }
}
