import GuestMemory
import Testing

@Suite struct GuestMemoryMapTests {
    @Test func translatesAcrossTwoPlacementsOfOneRegion() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 4 << 20, backing: .memfd)
        let map = GuestMemoryMap(regions: [region], mappings: [
            GuestMapping(guestAddress: GuestAddress(0x1_0000_0000), sizeInBytes: 2 << 20, region: region, regionOffset: RegionOffset(2 << 20)),
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: 2 << 20, region: region, regionOffset: RegionOffset(0)),
        ])
        #expect(map.mappings.first?.guestAddress == GuestAddress(0))
        let (found, offset) = try map.translate(GuestAddress(0x1_0000_0010), length: 16)
        #expect(found === region)
        #expect(offset == RegionOffset((2 << 20) + 0x10))
        try map.write([0xaa, 0xbb], at: GuestAddress(0x1_0000_0000))
        #expect(try region.read(count: 2, at: RegionOffset(2 << 20)) == [0xaa, 0xbb])
    }

    @Test func refusesRangesOutsideOrAcrossMappings() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 2 << 20, backing: .memfd)
        let map = GuestMemoryMap(regions: [region], mappings: [
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: 2 << 20, region: region, regionOffset: RegionOffset(0)),
        ])
        #expect(throws: GuestMemoryError.self) { try map.translate(GuestAddress(2 << 20), length: 1) }
        #expect(throws: GuestMemoryError.self) { try map.translate(GuestAddress((2 << 20) - 4), length: 8) }
        #expect(map.region(named: "ram") === region)
        #expect(map.region(named: "vga") == nil)
    }
}
