import CLinux
import KVM

/// Configures a new vCPU: CPUID, boot MSRs, local APIC wiring, and the entry state for the boot CPU.
enum VCPUSetup {
    static let miscEnableMSR: UInt32 = 0x1a0
    static let fastStrings: UInt64 = 1

    static func configure(_ vcpu: VirtualCPU, cpuid: [CPUIDEntry], entry: KernelEntry?) throws(KVMError) {
        try vcpu.setCPUID(cpuid)
        try vcpu.setModelSpecificRegisters([(miscEnableMSR, fastStrings)])
        try wireLocalInterrupts(vcpu, bootCPU: vcpu.id == 0)
        guard let entry else { return }  // other CPUs wait for INIT/SIPI from the guest
        var registers = try vcpu.registers()
        var special = try vcpu.specialRegisters()
        BootCPUState.apply(entry, to: &registers, &special)
        try vcpu.setSpecialRegisters(special)
        try vcpu.setRegisters(registers)
    }

    /// LINT0 as ExtINT on the boot CPU (so the 8259's interrupts reach it) and LINT1 as NMI, as firmware leaves them.
    private static func wireLocalInterrupts(_ vcpu: VirtualCPU, bootCPU: Bool) throws(KVMError) {
        var page = try vcpu.localAPIC()
        func put(_ value: UInt32, at offset: Int) {
            for i in 0..<4 { page[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
        }
        put(bootCPU ? 0x700 : 0x10700, at: 0x350)  // LVT LINT0: ExtINT (masked on the others)
        put(0x400, at: 0x360)                      // LVT LINT1: NMI
        try vcpu.setLocalAPIC(page)
    }
}
