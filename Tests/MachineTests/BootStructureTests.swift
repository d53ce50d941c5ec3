import GuestMemory
@testable import Machine
import Testing

@Suite struct BootStructureTests {
    func ram(_ size: UInt64) throws -> (GuestMemoryMap, [GuestMapping]) {
        let region = try GuestRegion(name: "ram", sizeInBytes: size, backing: .memfd)
        let mappings = RAMLayout.mappings(for: region)
        return (GuestMemoryMap(regions: [region], mappings: mappings), mappings)
    }

    @Test func largeRAMIsSplitAroundTheHoleBelow4GiB() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 4 << 30, backing: .memfd)
        let mappings = RAMLayout.mappings(for: region)
        #expect(mappings.count == 2)
        #expect(mappings[0].guestAddress == GuestAddress(0) && mappings[0].sizeInBytes == 3 << 30)
        #expect(mappings[1].guestAddress == GuestAddress(4 << 30) && mappings[1].sizeInBytes == 1 << 30)
        #expect(mappings[1].regionOffset == RegionOffset(3 << 30))
        let small = try GuestRegion(name: "ram", sizeInBytes: 64 << 20, backing: .memfd)
        #expect(RAMLayout.mappings(for: small).count == 1)
    }

    @Test func memoryMapReservesTheEBDAAndSkipsTheLegacyHole() throws {
        let (_, mappings) = try ram(64 << 20)
        let entries = E820Map.entries(for: mappings)
        #expect(entries == [
            E820Entry(address: 0, sizeInBytes: 0x9fc00, kind: .ram),
            E820Entry(address: 0x9fc00, sizeInBytes: 0x400, kind: .reserved),
            E820Entry(address: 0x100000, sizeInBytes: (64 << 20) - 0x100000, kind: .ram),
        ])
    }

    @Test func mpTableChecksumsAndCPUEntries() {
        let bytes = MPTable.bytes(cpuCount: 2)
        #expect(Array(bytes[0..<4]) == Array("_MP_".utf8))
        #expect(bytes[0..<16].reduce(0, &+) == 0)
        let table = Array(bytes[16...])
        #expect(Array(table[0..<4]) == Array("PCMP".utf8))
        let length = Int(table[4]) | Int(table[5]) << 8
        #expect(length == table.count)
        #expect(table.reduce(0, &+) == 0)
        #expect(table[44] == 0 && table[45] == 0 && table[47] == 0x3)   // CPU 0: bootstrap, enabled
        #expect(table[64] == 0 && table[65] == 1 && table[67] == 0x1)   // CPU 1: enabled
    }

    @Test func pvhStartInfoPointsAtItsTables() {
        let map = [E820Entry(address: 0, sizeInBytes: 0x9fc00, kind: .ram)]
        let pvh = PVHStartInfo.build(memoryMap: map, initrd: (0x200_0000, 0x1234))
        let reader = ByteReader(bytes: pvh.info)
        #expect(reader.get(UInt32.self, at: 0) == 0x336e_c578)
        #expect(reader.get(UInt32.self, at: 4) == 1)
        #expect(reader.get(UInt32.self, at: 12) == 1)
        #expect(reader.get(UInt64.self, at: 24) == X86Layout.commandLineAddress.rawValue)
        #expect(reader.get(UInt64.self, at: 40) == X86Layout.pvhMemoryMapAddress.rawValue)
        #expect(reader.get(UInt32.self, at: 48) == 1)
        #expect(ByteReader(bytes: pvh.memoryMap).get(UInt64.self, at: 8) == 0x9fc00)
        #expect(ByteReader(bytes: pvh.modules).get(UInt64.self, at: 8) == 0x1234)
    }

    @Test func gdtSegmentsMatchTheirDescriptors() {
        let code = BootGDT.segment(index: 2, longMode: true)
        #expect(code.selector == 0x10 && code.l == 1 && code.db == 0 && code.limit == 0xffff_ffff && code.type == 0xb)
        let code32 = BootGDT.segment(index: 2, longMode: false)
        #expect(code32.l == 0 && code32.db == 1)
        let gdt = ByteReader(bytes: BootGDT.bytes(longMode: true))
        #expect(gdt.get(UInt64.self, at: 16) == 0x00af_9b00_0000_ffff)
        #expect(gdt.get(UInt64.self, at: 24) == 0x00cf_9300_0000_ffff)
    }

    @Test func pageTablesIdentityMapFourGiB() {
        let reader = ByteReader(bytes: IdentityPageTables.bytes())
        #expect(reader.get(UInt64.self, at: 0) == 0xa003)
        #expect(reader.get(UInt64.self, at: 0x1000 + 8 * 3) == 0xe003)
        #expect(reader.get(UInt64.self, at: 0x2000 + 8) == 0x20_0083)
        #expect(reader.get(UInt64.self, at: 0x5000 + 8 * 511) == (UInt64(4 << 30) - (2 << 20)) | 0x83)
    }

    @Test func cpuidCarriesEachCPUsAPICIDAndTheCount() {
        let supported = [CPUIDEntryFixture.leaf1, CPUIDEntryFixture.leaf0b0, CPUIDEntryFixture.leaf0b1]
        let entries = CPUIDTemplate.entries(from: supported, cpuID: 3, cpuCount: 4)
        #expect(entries[0].ebx >> 24 == 3)
        #expect((entries[0].ebx >> 16) & 0xff == 4)
        #expect(entries[0].ecx & (1 << 31) != 0)
        #expect(entries[1].edx == 3 && entries[2].ebx == 4 && entries[2].eax == 2)
    }
}

import KVM

enum CPUIDEntryFixture {
    static let leaf1 = CPUIDEntry(function: 1, index: 0, flags: 0, eax: 0x806f8, ebx: 0, ecx: 0, edx: 0)
    static let leaf0b0 = CPUIDEntry(function: 0xb, index: 0, flags: 1, eax: 0, ebx: 0, ecx: 0, edx: 0)
    static let leaf0b1 = CPUIDEntry(function: 0xb, index: 1, flags: 1, eax: 0, ebx: 0, ecx: 0, edx: 0)
}
