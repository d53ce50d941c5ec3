/// Translates guest virtual addresses to guest-physical ones by reading the guest's own page
/// tables out of an image, as the MMU of the vCPU would: the tables are in guest memory, so a
/// stopped VM, a snapshot or a core can be read through the kernel's or a process's view.
package struct PageTableWalker: Sendable {
    package let image: MemoryImage
    package let mode: PagingMode
    package let cr3: UInt64
    /// CR4.PSE: whether 32-bit paging honours the page-size bit in a PD entry (4 MiB pages).
    /// PAE and long mode always honour it, so it matters only for `.legacy32`.
    package let pageSizeExtensions: Bool

    /// A walker for the mode and CR3 `processor` was in.
    package init(image: MemoryImage, processor: ProcessorState) {
        self.init(image: image, cr3: processor.cr3, mode: PagingMode(processor: processor),
                  pageSizeExtensions: processor.cr4 & (1 << 4) != 0)
    }

    /// A walker for a CR3 and mode given by hand (`--cr3`), e.g. a process's page tables. 32-bit
    /// paging assumes CR4.PSE by default, as every kernel that can sets it.
    package init(image: MemoryImage, cr3: UInt64, mode: PagingMode, pageSizeExtensions: Bool = true) {
        self.image = image
        self.cr3 = cr3
        self.mode = mode
        self.pageSizeExtensions = pageSizeExtensions
    }

    /// The guest-physical address of `virtual`, its page size and the entries read.
    package func translate(_ virtual: UInt64) throws(InspectError) -> Translation {
        switch mode {
        case .none:
            return Translation(virtual: virtual, physical: virtual, pageSize: Translation.size4KiB, steps: [])
        case .legacy32, .pae:
            guard virtual >> 32 == 0 else {
                throw .badArgument("virtual address 0x\(String(virtual, radix: 16)) does not fit in 32 bits; \(mode.displayName) paging translates 32-bit addresses")
            }
        case .fourLevel, .fiveLevel:
            let top = mode == .fiveLevel ? 56 : 47
            let upper = virtual >> UInt64(top)
            guard upper == 0 || upper == (UInt64(1) << UInt64(64 - top)) - 1 else {
                throw .badArgument("virtual address 0x\(String(virtual, radix: 16)) is not canonical for \(mode.displayName) paging: bits 63..\(top) must all equal bit \(top)")
            }
        }
        return try walk(virtual)
    }

    /// `count` bytes of virtual memory from `virtual`, each page translated on its own, so a
    /// read may span pages the guest placed anywhere in physical memory.
    package func read(virtual: UInt64, count: Int) throws(InspectError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        var position = virtual
        while bytes.count < count {
            let translation = try translate(position)
            let part = Int(min(UInt64(count - bytes.count), translation.bytesLeftInPage))
            bytes += try image.readPhysical(translation.physical, count: part)
            position &+= UInt64(part)
        }
        return bytes
    }

    /// Reads one entry per level of `mode`, stopping at a not-present entry or a large page.
    private func walk(_ virtual: UInt64) throws(InspectError) -> Translation {
        let levels = PagingLevel.levels(of: mode, pageSizeExtensions: pageSizeExtensions)
        var table = PagingLevel.tableBase(cr3: cr3, mode: mode)
        var steps: [Translation.Step] = []
        for (depth, level) in levels.enumerated() {
            let entryAddress = table + ((virtual >> level.shift) & level.indexMask) * level.entrySize
            let entry = level.entrySize == 4
                ? try readPhysicalWord32(entryAddress)
                : try image.readPhysicalWord(entryAddress)
            steps.append(Translation.Step(level: level.name, entryAddress: entryAddress, entry: entry))
            guard entry & PagingLevel.present != 0 else {
                throw .unmappedVirtual(address: virtual, level: level.name, entryAddress: entryAddress)
            }
            let last = depth == levels.count - 1
            if last || entry & PagingLevel.pageSizeBit != 0 && level.pageSizeMeaning != .ignored {
                if !last && level.pageSizeMeaning == .reserved {
                    throw .damaged(path: image.source, reason: "the \(level.name) entry 0x\(String(entry, radix: 16)) at guest-physical 0x\(String(entryAddress, radix: 16)) sets the page-size bit, which is reserved at that level")
                }
                let size = UInt64(1) << level.shift
                let base = level.pageBase(entry: entry, size: size)
                return Translation(virtual: virtual, physical: base | (virtual & (size - 1)), pageSize: size, steps: steps)
            }
            table = level.nextTable(entry: entry)
        }
        // Unreachable: the last level always returns above.
        throw .damaged(path: image.source, reason: "a \(mode.displayName) walk of 0x\(String(virtual, radix: 16)) ended without a page")
    }

    /// One little-endian 32-bit word of guest-physical memory (32-bit paging entries).
    private func readPhysicalWord32(_ address: UInt64) throws(InspectError) -> UInt64 {
        let bytes = try image.readPhysical(address, count: 4)
        return (0..<4).reduce(UInt64(0)) { $0 | UInt64(bytes[$1]) << (8 * UInt64($1)) }
    }
}
