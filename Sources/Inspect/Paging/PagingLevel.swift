/// One level of a page-table tree: which virtual-address bits index it, how wide its entries
/// are and what the page-size bit means there. Walks of every mode are the same loop over these.
struct PagingLevel: Sendable {
    /// What bit 7 (PS) of an entry at this level does.
    enum PageSizeMeaning: Sendable {
        /// The entry maps a page of 2^shift bytes when PS is set.
        case largePage
        /// PS must be 0 (PML5, PML4, PAE PDPT): a set bit is a broken table.
        case reserved
        /// PS is ignored (a 32-bit PD entry with CR4.PSE clear).
        case ignored
    }

    let name: String
    /// The lowest virtual-address bit of this level's index; also log2 of its page size.
    let shift: UInt64
    let indexMask: UInt64
    /// 4 for 32-bit paging, 8 otherwise.
    let entrySize: UInt64
    let pageSizeMeaning: PageSizeMeaning

    static let present: UInt64 = 1
    static let pageSizeBit: UInt64 = 1 << 7
    /// Bits 12..51 of a 64-bit entry: the next table or the page. Bit 63 (XD) and the
    /// software-available bits 52..62 are not part of the address.
    static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000

    /// The levels of `mode`, top first.
    static func levels(of mode: PagingMode, pageSizeExtensions: Bool) -> [PagingLevel] {
        let pd = PagingLevel(name: "PD", shift: 21, indexMask: 0x1FF, entrySize: 8, pageSizeMeaning: .largePage)
        let pt = PagingLevel(name: "PT", shift: 12, indexMask: 0x1FF, entrySize: 8, pageSizeMeaning: .largePage)
        let pdpt = PagingLevel(name: "PDPT", shift: 30, indexMask: 0x1FF, entrySize: 8, pageSizeMeaning: .largePage)
        let pml4 = PagingLevel(name: "PML4", shift: 39, indexMask: 0x1FF, entrySize: 8, pageSizeMeaning: .reserved)
        let pml5 = PagingLevel(name: "PML5", shift: 48, indexMask: 0x1FF, entrySize: 8, pageSizeMeaning: .reserved)
        switch mode {
        case .none:
            return []
        case .legacy32:
            return [
                PagingLevel(name: "PD", shift: 22, indexMask: 0x3FF, entrySize: 4,
                            pageSizeMeaning: pageSizeExtensions ? .largePage : .ignored),
                PagingLevel(name: "PT", shift: 12, indexMask: 0x3FF, entrySize: 4, pageSizeMeaning: .largePage),
            ]
        case .pae:
            return [PagingLevel(name: "PDPT", shift: 30, indexMask: 0x3, entrySize: 8, pageSizeMeaning: .reserved), pd, pt]
        case .fourLevel:
            return [pml4, pdpt, pd, pt]
        case .fiveLevel:
            return [pml5, pml4, pdpt, pd, pt]
        }
    }

    /// The guest-physical address of the top table. CR3's low bits are flags or a PCID in long
    /// mode; PAE's PDPT is 32-byte aligned below 4 GiB; 32-bit paging's PD is page aligned.
    static func tableBase(cr3: UInt64, mode: PagingMode) -> UInt64 {
        switch mode {
        case .none: 0
        case .legacy32: cr3 & 0xFFFF_F000
        case .pae: cr3 & 0xFFFF_FFE0
        case .fourLevel, .fiveLevel: cr3 & addressMask
        }
    }

    /// The next table an entry points to.
    func nextTable(entry: UInt64) -> UInt64 {
        entrySize == 4 ? entry & 0xFFFF_F000 : entry & Self.addressMask
    }

    /// The guest-physical base of the page of `size` bytes an entry maps. Below the page size the
    /// bits of a large-page entry hold flags (PAT is bit 12), so they are masked off.
    func pageBase(entry: UInt64, size: UInt64) -> UInt64 {
        guard entrySize == 4 else { return entry & Self.addressMask & ~(size - 1) }
        guard size > Translation.size4KiB else { return entry & 0xFFFF_F000 }
        // A 4 MiB PDE: bits 31..22 are address bits 31..22; bits 20..13 (PSE-36/PSE-40) are
        // address bits 39..32.
        return entry & 0xFFC0_0000 | ((entry >> 13) & 0xFF) << 32
    }
}
