import GuestMemory

/// Every guest-physical address Engram's x86 machine uses, in one place.
package enum X86Layout {
    /// The boot GDT (null, null, code 0x10, data 0x18, TSS 0x20), as Linux's boot protocol expects.
    static let gdtAddress = GuestAddress(0x500)
    /// PVH `hvm_start_info`, followed by its memory map and module list.
    static let pvhStartInfoAddress = GuestAddress(0x6000)
    static let pvhMemoryMapAddress = GuestAddress(0x6040)
    static let pvhModuleListAddress = GuestAddress(0x6800)
    /// The command lines of PVH modules (the framebuffer module's describes it).
    static let pvhModuleCommandLineAddress = GuestAddress(0x6900)
    /// Linux's zero page (`struct boot_params`).
    static let bootParamsAddress = GuestAddress(0x7000)
    /// Boot stack top for the 64-bit Linux entry.
    static let bootStackPointer: UInt64 = 0x8ff0
    /// Identity page tables for the 64-bit Linux entry: PML4, PDPT, then four page directories.
    static let pageTablesAddress = GuestAddress(0x9000)
    /// The kernel command line.
    static let commandLineAddress = GuestAddress(0x20000)
    static let commandLineMaximumBytes = 0x10000
    /// The MP table lives in the last KiB below 640 KiB (the EBDA), reserved in the memory map.
    static let mpTableAddress = GuestAddress(0x9fc00)
    static let lowMemoryEnd: UInt64 = 0xa0000
    /// ACPI: the RSDP where a BIOS puts it (Linux also scans here), the other tables after it;
    /// below 1 MiB and outside the memory map, so no guest allocator hands the bytes out.
    static let acpiRSDPAddress = GuestAddress(0xe0000)
    static let acpiTablesAddress = GuestAddress(0xe0040)
    static let acpiTablesEnd: UInt64 = 0xef000
    /// The VM generation ID's 16 bytes (ACPI VMGenID), on a page of their own after the tables.
    package static let generationIDAddress = GuestAddress(0xef000)
    /// The interrupt line of the ACPI generic event device, which tells the guest the ID changed.
    static let generationIDNotifyGSI: UInt32 = 3
    /// Kernels load at 1 MiB.
    static let kernelLoadAddress = GuestAddress(0x100000)
    /// RAM below 4 GiB ends here at most; the rest starts at 4 GiB (the hole holds the APICs and KVM's pages).
    static let lowRAMMaximum: UInt64 = 0xc000_0000
    static let highRAMStart: UInt64 = 0x1_0000_0000
    /// The framebuffer's pixels, in the hole below 4 GiB (a 32-bit address, as Linux's screen_info needs).
    package static let framebufferAddress = GuestAddress(0xd000_0000)
    /// Three pages KVM needs for its TSS, and one for the identity map, on Intel hosts; in the hole below 4 GiB.
    static let kvmTSSAddress = GuestAddress(0xfffb_d000)
    static let kvmIdentityMapAddress = GuestAddress(0xfffb_c000)
    static let ioAPICAddress: UInt32 = 0xfec0_0000
    static let localAPICAddress: UInt32 = 0xfee0_0000
}
