
/// Where one region (or a part of it) appears in guest-physical address space.
package struct GuestMapping: Sendable {
    package let guestAddress: GuestAddress
    package let sizeInBytes: UInt64
    package let region: GuestRegion
    package let regionOffset: RegionOffset

    package init(guestAddress: GuestAddress, sizeInBytes: UInt64, region: GuestRegion, regionOffset: RegionOffset) {
        self.guestAddress = guestAddress
        self.sizeInBytes = sizeInBytes
        self.region = region
        self.regionOffset = regionOffset
    }

    /// One past the last guest-physical byte.
    package var endAddress: GuestAddress { guestAddress.advanced(by: sizeInBytes) }

    /// The mapping's place in guest-physical memory, without the region.
    package var placement: GuestPlacement { GuestPlacement(guestAddress: guestAddress, sizeInBytes: sizeInBytes, regionOffset: regionOffset) }
}

/// The guest's physical memory: named regions and where each is placed.
///
/// Translates guest-physical addresses to (region, offset) so loaders and devices reach
/// guest RAM without knowing how it is backed.
package struct GuestMemoryMap: Sendable {
    package let regions: [GuestRegion]
    /// Sorted by guest address, non-overlapping.
    package let mappings: [GuestMapping]

    package init(regions: [GuestRegion], mappings: [GuestMapping]) {
        let sorted = mappings.sorted { $0.guestAddress < $1.guestAddress }
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            precondition(a.endAddress <= b.guestAddress, "guest mappings overlap at \(b.guestAddress)")
        }
        self.regions = regions
        self.mappings = sorted
    }

    /// Where `region` appears in guest-physical memory, in address order.
    package func placements(of region: GuestRegion) -> [GuestPlacement] {
        mappings.filter { $0.region === region }.map(\.placement)
    }

    /// The region called `name`.
    package func region(named name: String) -> GuestRegion? { regions.first { $0.name == name } }

    /// The mapping and offset holding `[address, address+length)`, which must not cross mappings.
    package func translate(_ address: GuestAddress, length: UInt64) throws(GuestMemoryError) -> (GuestRegion, RegionOffset) {
        for mapping in mappings where mapping.guestAddress <= address && address < mapping.endAddress {
            let delta = address.rawValue - mapping.guestAddress.rawValue
            guard length <= mapping.sizeInBytes - delta else { break }
            return (mapping.region, RegionOffset(mapping.regionOffset.rawValue + delta))
        }
        throw .outOfRange(address: address, length: length)
    }

    /// Copies `bytes` to guest-physical `address`.
    package func write(_ bytes: [UInt8], at address: GuestAddress) throws(GuestMemoryError) {
        let (region, offset) = try translate(address, length: UInt64(bytes.count))
        try region.write(bytes, at: offset)
    }

    /// Copies `count` bytes from guest-physical `address`.
    package func read(count: Int, at address: GuestAddress) throws(GuestMemoryError) -> [UInt8] {
        let (region, offset) = try translate(address, length: UInt64(count))
        return try region.read(count: count, at: offset)
    }
}
