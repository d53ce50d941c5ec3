import Foundation
import Testing
import TestSupport
import Inspect

/// Synthetic guest memory for page-table walks: an 8 MiB flat RAM file with tables and pages
/// planted at known guest-physical addresses.
private struct SyntheticMemory {
    var bytes = [UInt8](repeating: 0, count: 8 << 20)

    mutating func put64(_ value: UInt64, at address: UInt64) {
        for index in 0..<8 { bytes[Int(address) + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
    }

    mutating func put32(_ value: UInt32, at address: UInt64) {
        for index in 0..<4 { bytes[Int(address) + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(index))) }
    }

    mutating func put(_ data: [UInt8], at address: UInt64) {
        bytes.replaceSubrange(Int(address)..<Int(address) + data.count, with: data)
    }

    func image(in directory: TemporaryDirectory) throws -> MemoryImage {
        let path = directory.path("ram-\(UUID().uuidString.prefix(6))")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return try MemoryImage.raw(path: path, layout: .flat)
    }
}

private let present: UInt64 = 0x1
private let writable: UInt64 = 0x2
private let pageSizeBit: UInt64 = 0x80
/// Bits an entry may carry that are not address bits: XD (63), protection key and software
/// bits (52..62), accessed/dirty/global (5, 6, 8).
private let noise: UInt64 = 1 << 63 | 0x7F << 52 | 0x160
/// The PAT bit of a 2 MiB or 1 GiB entry (bit 12), which lies inside the address field.
private let largePAT: UInt64 = 1 << 12

private let longMode = ProcessorState(id: 0, cr0: 0x8000_0011, cr3: 0x1000, cr4: 0x20, efer: 0xD00)

/// Index `level` (0 = PT) of a long-mode virtual address.
private func index(_ virtual: UInt64, _ level: Int) -> UInt64 { (virtual >> UInt64(12 + 9 * level)) & 0x1FF }

@Suite("Page-table walker")
struct PageTableWalkerTests {
    let directory = TemporaryDirectory()

    /// A 4-level tree at 0x1000 (PML4), 0x2000 (PDPT), 0x3000 (PD), 0x4000 (PT) mapping the
    /// kernel address `kernel4K` to 0x100000, `next4K` to 0x150000, `big2M` to a 2 MiB page at
    /// 0x400000 and `huge1G` to a 1 GiB page at 5 GiB.
    static let kernel4K: UInt64 = 0xFFFF_8880_0012_3000
    static let next4K: UInt64 = 0xFFFF_8880_0012_4000
    static let big2M: UInt64 = 0xFFFF_8880_0060_0000
    static let huge1G: UInt64 = 0xFFFF_8880_4000_0000

    private func fourLevelMemory() -> SyntheticMemory {
        var memory = SyntheticMemory()
        let va = Self.kernel4K
        memory.put64(0x2000 | present | writable | noise, at: 0x1000 + index(va, 3) * 8)
        memory.put64(0x3000 | present | writable | noise, at: 0x2000 + index(va, 2) * 8)
        memory.put64(0x4000 | present | writable, at: 0x3000 + index(va, 1) * 8)
        memory.put64(0x10_0000 | present | writable | noise, at: 0x4000 + index(va, 0) * 8)
        memory.put64(0x15_0000 | present, at: 0x4000 + index(Self.next4K, 0) * 8)
        memory.put64(0x40_0000 | largePAT | present | pageSizeBit | noise, at: 0x3000 + index(Self.big2M, 1) * 8)
        memory.put64(0x1_4000_0000 | largePAT | present | pageSizeBit, at: 0x2000 + index(Self.huge1G, 2) * 8)
        memory.put(Array("kernel page".utf8), at: 0x10_0456)
        memory.put(Array("large page".utf8), at: 0x40_0000 + 0x1_2345)
        return memory
    }

    @Test("mode follows CR0.PG, EFER.LMA, CR4.LA57 and CR4.PAE")
    func modes() {
        #expect(PagingMode(processor: ProcessorState(id: 0, cr0: 0x11, cr3: 0, cr4: 0x20, efer: 0x500)) == .none)
        #expect(PagingMode(processor: longMode) == .fourLevel)
        #expect(PagingMode(processor: ProcessorState(id: 0, cr0: 0x8000_0011, cr3: 0, cr4: 0x1020, efer: 0x500)) == .fiveLevel)
        // LME without LMA (paging just being enabled) is not long mode yet.
        #expect(PagingMode(processor: ProcessorState(id: 0, cr0: 0x8000_0011, cr3: 0, cr4: 0x20, efer: 0x100)) == .pae)
        #expect(PagingMode(processor: ProcessorState(id: 0, cr0: 0x8000_0011, cr3: 0, cr4: 0x10, efer: 0)) == .legacy32)
    }

    @Test("4-level 4 KiB page: address bits masked, every level reported")
    func fourLevelSmallPage() throws {
        let walker = PageTableWalker(image: try fourLevelMemory().image(in: directory), processor: longMode)
        let translation = try walker.translate(Self.kernel4K + 0x456)
        #expect(translation.physical == 0x10_0456)
        #expect(translation.pageSize == 4096)
        #expect(translation.levels == 4)
        #expect(translation.steps.map(\.level) == ["PML4", "PDPT", "PD", "PT"])
        #expect(translation.steps[0].entryAddress == 0x1000 + index(Self.kernel4K, 3) * 8)
        #expect(try walker.read(virtual: Self.kernel4K + 0x456, count: 11) == Array("kernel page".utf8))
    }

    @Test("4-level 2 MiB and 1 GiB pages ignore the PAT bit")
    func fourLevelLargePages() throws {
        let walker = PageTableWalker(image: try fourLevelMemory().image(in: directory), processor: longMode)
        let large = try walker.translate(Self.big2M + 0x1_2345)
        #expect(large.physical == 0x40_0000 + 0x1_2345)
        #expect(large.pageSize == 2 << 20)
        #expect(large.levels == 3)
        #expect(try walker.read(virtual: Self.big2M + 0x1_2345, count: 10) == Array("large page".utf8))
        let huge = try walker.translate(Self.huge1G + 0x3456_789A)
        #expect(huge.physical == 0x1_4000_0000 + 0x3456_789A)
        #expect(huge.pageSize == 1 << 30)
        #expect(huge.levels == 2)
    }

    @Test("a CR3 given by hand walks the same tables; PCID bits in CR3 are ignored")
    func handGivenCR3() throws {
        let image = try fourLevelMemory().image(in: directory)
        let walker = PageTableWalker(image: image, cr3: 0x1000 | 0x5, mode: .fourLevel)
        #expect(try walker.translate(Self.kernel4K).physical == 0x10_0000)
        #expect(try PageTableWalker(image: image, cr3: 0, mode: .none).translate(0x12_3456).physical == 0x12_3456)
    }

    @Test("not present at each level names the level and the entry")
    func unmappedAtEachLevel() throws {
        var memory = fourLevelMemory()
        // A PD whose entry for `missingPT` points to a PT with no entry for it.
        let missingPT = Self.kernel4K + 0x10_000
        // `missingPD`: same PDPT entry, PD entry absent.
        let missingPD = Self.kernel4K + (4 << 20)
        // `missingPDPT`: same PML4 entry, PDPT entry absent.
        let missingPDPT = Self.kernel4K + (2 << 30)
        let missingPML4: UInt64 = 0xFFFF_FF00_0000_0000
        memory.put64(0, at: 0x4000 + index(missingPT, 0) * 8)
        let walker = PageTableWalker(image: try memory.image(in: directory), processor: longMode)
        let cases: [(UInt64, String, UInt64)] = [
            (missingPML4, "PML4", 0x1000 + index(missingPML4, 3) * 8),
            (missingPDPT, "PDPT", 0x2000 + index(missingPDPT, 2) * 8),
            (missingPD, "PD", 0x3000 + index(missingPD, 1) * 8),
            (missingPT, "PT", 0x4000 + index(missingPT, 0) * 8),
        ]
        for (virtual, level, entry) in cases {
            #expect(throws: InspectError.unmappedVirtual(address: virtual, level: level, entryAddress: entry)) {
                try walker.translate(virtual)
            }
        }
        let error = InspectError.unmappedVirtual(address: missingPT, level: "PT", entryAddress: 0x4000)
        #expect(error.description.contains("PT entry"))
    }

    @Test("non-canonical addresses are refused before any table is read")
    func nonCanonical() throws {
        let walker = PageTableWalker(image: try fourLevelMemory().image(in: directory), processor: longMode)
        for virtual: UInt64 in [0x0000_8000_0000_0000, 0xFFFF_7FFF_FFFF_F000, 0x0100_0000_0000_0000] {
            let error = #expect(throws: InspectError.self) { try walker.translate(virtual) }
            guard case .badArgument(let message) = error else { Issue.record("wrong error \(String(describing: error))"); continue }
            #expect(message.contains("not canonical"))
        }
        // The highest canonical address walks (and is unmapped at the PML4).
        #expect(throws: InspectError.unmappedVirtual(address: 0xFFFF_FFFF_FFFF_F000, level: "PML4", entryAddress: 0x1FF8)) {
            try walker.translate(0xFFFF_FFFF_FFFF_F000)
        }
    }

    @Test("a table outside every region is an unmapped physical address; PS in a PML4 entry is damage")
    func brokenTables() throws {
        var memory = SyntheticMemory()
        let va: UInt64 = 0x7F00_0000_0000
        memory.put64(0x4000_0000 | present, at: 0x1000 + index(va, 3) * 8)
        let other: UInt64 = 0x7E00_0000_0000
        memory.put64(0x2000 | present | pageSizeBit, at: 0x1000 + index(other, 3) * 8)
        let walker = PageTableWalker(image: try memory.image(in: directory), processor: longMode)
        let error = #expect(throws: InspectError.self) { try walker.translate(va) }
        guard case .unmappedPhysical(let address, _) = error else { Issue.record("wrong error \(String(describing: error))"); return }
        #expect(address == 0x4000_0000 + index(va, 2) * 8)
        let reserved = #expect(throws: InspectError.self) { try walker.translate(other) }
        guard case .damaged(_, let reason) = reserved else { Issue.record("wrong error \(String(describing: reserved))"); return }
        #expect(reason.contains("PML4"))
    }

    @Test("5-level paging walks PML5 first and accepts 57-bit addresses")
    func fiveLevel() throws {
        var memory = SyntheticMemory()
        let va: UInt64 = 0xFF11_2233_4455_6000
        let pml5Index = (va >> 48) & 0x1FF
        memory.put64(0x6000 | present | writable, at: 0x5000 + pml5Index * 8)
        memory.put64(0x7000 | present | writable, at: 0x6000 + index(va, 3) * 8)
        memory.put64(0x8000 | present | writable, at: 0x7000 + index(va, 2) * 8)
        memory.put64(0x9000 | present | writable, at: 0x8000 + index(va, 1) * 8)
        memory.put64(0x20_0000 | present | noise, at: 0x9000 + index(va, 0) * 8)
        memory.put(Array("five".utf8), at: 0x20_0789)
        let processor = ProcessorState(id: 0, cr0: 0x8000_0011, cr3: 0x5000, cr4: 0x1020, efer: 0xD00)
        let walker = PageTableWalker(image: try memory.image(in: directory), processor: processor)
        #expect(walker.mode == .fiveLevel)
        let translation = try walker.translate(va + 0x789)
        #expect(translation.physical == 0x20_0789)
        #expect(translation.steps.map(\.level) == ["PML5", "PML4", "PDPT", "PD", "PT"])
        #expect(try walker.read(virtual: va + 0x789, count: 4) == Array("five".utf8))
        #expect(throws: InspectError.unmappedVirtual(address: 0x00FF_0000_0000_0000, level: "PML5", entryAddress: 0x5000 + 0xFF * 8)) {
            try walker.translate(0x00FF_0000_0000_0000)
        }
        #expect(throws: InspectError.self) { try walker.translate(0x0100_0000_0000_0000) }
    }

    @Test("PAE: 32-byte aligned PDPT, 4 KiB and 2 MiB pages, NX ignored")
    func pae() throws {
        var memory = SyntheticMemory()
        let small: UInt64 = 0xC012_3000
        let large: UInt64 = 0xC060_0000
        memory.put64(0x7000 | present, at: 0x6020 + 3 * 8)
        memory.put64(0x8000 | present | writable, at: 0x7000 + ((small >> 21) & 0x1FF) * 8)
        memory.put64(0x30_0000 | present | 1 << 63, at: 0x8000 + ((small >> 12) & 0x1FF) * 8)
        memory.put64(0x60_0000 | largePAT | present | pageSizeBit, at: 0x7000 + ((large >> 21) & 0x1FF) * 8)
        memory.put(Array("pae".utf8), at: 0x30_0ABC)
        let processor = ProcessorState(id: 0, cr0: 0x8000_0011, cr3: 0x6020, cr4: 0x20, efer: 0)
        let walker = PageTableWalker(image: try memory.image(in: directory), processor: processor)
        #expect(walker.mode == .pae)
        let translation = try walker.translate(small + 0xABC)
        #expect(translation.physical == 0x30_0ABC)
        #expect(translation.steps.map(\.level) == ["PDPT", "PD", "PT"])
        #expect(translation.steps[0].entryAddress == 0x6038)
        #expect(try walker.read(virtual: small + 0xABC, count: 3) == Array("pae".utf8))
        let big = try walker.translate(large + 0x1_2345)
        #expect(big.physical == 0x61_2345)
        #expect(big.pageSize == 2 << 20)
        #expect(throws: InspectError.unmappedVirtual(address: 0x4000_0000, level: "PDPT", entryAddress: 0x6028)) {
            try walker.translate(0x4000_0000)
        }
        #expect(throws: InspectError.self) { try walker.translate(0x1_0000_0000) }
    }

    @Test("32-bit paging: 4-byte entries, 4 MiB PSE pages with PSE-36 high bits")
    func legacy32() throws {
        var memory = SyntheticMemory()
        let small: UInt64 = 0xC040_1000
        let large: UInt64 = 0x8000_0000
        let high: UInt64 = 0x8040_0000
        memory.put32(0xA000 | 0x3, at: 0x9000 + (small >> 22) * 4)
        memory.put32(0x30_0000 | 0x3, at: 0xA000 + ((small >> 12) & 0x3FF) * 4)
        memory.put32(0x40_0000 | 0x83, at: 0x9000 + (large >> 22) * 4)
        // Bits 13..20 of a 4 MiB PDE are physical address bits 32..39.
        memory.put32(0x80_0000 | 1 << 13 | 0x83, at: 0x9000 + (high >> 22) * 4)
        memory.put(Array("legacy".utf8), at: 0x30_0234)
        memory.put(Array("pse".utf8), at: 0x40_0000 + 0x2_3456)
        let processor = ProcessorState(id: 0, cr0: 0x8000_0011, cr3: 0x9000, cr4: 0x10, efer: 0)
        let walker = PageTableWalker(image: try memory.image(in: directory), processor: processor)
        #expect(walker.mode == .legacy32)
        let translation = try walker.translate(small + 0x234)
        #expect(translation.physical == 0x30_0234)
        #expect(translation.steps.map(\.level) == ["PD", "PT"])
        #expect(try walker.read(virtual: small + 0x234, count: 6) == Array("legacy".utf8))
        let pse = try walker.translate(large + 0x2_3456)
        #expect(pse.pageSize == 4 << 20)
        #expect(try walker.read(virtual: large + 0x2_3456, count: 3) == Array("pse".utf8))
        #expect(try walker.translate(high + 0x10).physical == 0x1_0080_0010)
        #expect(throws: InspectError.unmappedVirtual(address: 0x1000, level: "PD", entryAddress: 0x9000)) {
            try walker.translate(0x1000)
        }
        #expect(throws: InspectError.unmappedVirtual(address: small + 0x1000, level: "PT", entryAddress: 0xA008)) {
            try walker.translate(small + 0x1000)
        }
    }

    @Test("reads crossing pages translate each page; a read into an unmapped page fails")
    func crossPageReads() throws {
        var memory = fourLevelMemory()
        memory.put(Array("0123456789abcdef".utf8), at: 0x10_0FF0)
        memory.put(Array("ghijklmnopqrstuv".utf8), at: 0x15_0000)
        let walker = PageTableWalker(image: try memory.image(in: directory), processor: longMode)
        #expect(try walker.read(virtual: Self.kernel4K + 0xFF0, count: 32) == Array("0123456789abcdefghijklmnopqrstuv".utf8))
        #expect(try walker.read(virtual: Self.kernel4K, count: 0) == [])
        let beyond = Self.next4K + 0x1000
        #expect(throws: InspectError.unmappedVirtual(address: beyond, level: "PT", entryAddress: 0x4000 + index(beyond, 0) * 8)) {
            try walker.read(virtual: Self.next4K + 0xFF0, count: 32)
        }
    }
}
