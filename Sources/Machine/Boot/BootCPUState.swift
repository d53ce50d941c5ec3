import CLinux
import KVM

/// The register state a kernel's entry protocol asks for, for the boot vCPU.
enum BootCPUState {
    static let cr0ProtectionEnable: UInt64 = 0x1
    static let cr0ExtensionType: UInt64 = 0x10
    static let cr0Paging: UInt64 = 0x8000_0000
    static let cr4PhysicalAddressExtension: UInt64 = 0x20
    static let eferLongModeEnable: UInt64 = 0x100
    static let eferLongModeActive: UInt64 = 0x400

    /// Applies `entry`'s protocol on top of the vCPU's reset state.
    static func apply(_ entry: KernelEntry, to registers: inout VCPURegisters, _ special: inout VCPUSpecialRegisters) {
        let longMode: Bool
        switch entry {
        case .pvh(let address):
            longMode = false
            registers.rip = UInt64(address)
            registers.rbx = X86Layout.pvhStartInfoAddress.rawValue
            special.cr0 = cr0ProtectionEnable | cr0ExtensionType
            special.cr4 = 0
            special.efer = 0
        case .linux64(let address):
            longMode = true
            registers.rip = address
            registers.rsi = X86Layout.bootParamsAddress.rawValue
            registers.rsp = X86Layout.bootStackPointer
            registers.rbp = X86Layout.bootStackPointer
            special.cr3 = X86Layout.pageTablesAddress.rawValue
            special.cr4 = cr4PhysicalAddressExtension
            special.cr0 = cr0ProtectionEnable | cr0ExtensionType | cr0Paging
            special.efer = eferLongModeEnable | eferLongModeActive
        }
        registers.rflags = 0x2
        let code = BootGDT.segment(index: 2, longMode: longMode)
        let data = BootGDT.segment(index: 3, longMode: longMode)
        special.cs = code
        special.ds = data
        special.es = data
        special.fs = data
        special.gs = data
        special.ss = data
        special.tr = BootGDT.segment(index: 4, longMode: longMode)
        special.gdt.base = X86Layout.gdtAddress.rawValue
        special.gdt.limit = UInt16(BootGDT.descriptors(longMode: longMode).count * 8 - 1)
        special.idt.base = 0
        special.idt.limit = 0
    }
}
