import CLinux

/// One piece of a vCPU's state that KVM gets and sets as a whole kernel struct.
///
/// Saved as the struct's raw bytes: these layouts are KVM's stable ABI, so a snapshot
/// can carry them unchanged and a tool can decode fields (e.g. CR3) at known offsets.
package enum VCPUStateBlock: String, CaseIterable, Codable, Sendable {
    case specialRegisters, registers, fpu, extendedState, extendedControlRegisters
    case localAPIC, multiprocessingState, events, debugRegisters

    /// The order restore applies blocks in: control registers before general ones, the
    /// local APIC after the APIC base (in sregs), pending events last.
    package static let restoreOrder: [VCPUStateBlock] = [
        .specialRegisters, .registers, .fpu, .extendedState, .extendedControlRegisters,
        .localAPIC, .multiprocessingState, .events, .debugRegisters,
    ]

    var name: (get: StaticString, set: StaticString) {
        switch self {
        case .specialRegisters: ("KVM_GET_SREGS", "KVM_SET_SREGS")
        case .registers: ("KVM_GET_REGS", "KVM_SET_REGS")
        case .fpu: ("KVM_GET_FPU", "KVM_SET_FPU")
        case .extendedState: ("KVM_GET_XSAVE2", "KVM_SET_XSAVE")
        case .extendedControlRegisters: ("KVM_GET_XCRS", "KVM_SET_XCRS")
        case .localAPIC: ("KVM_GET_LAPIC", "KVM_SET_LAPIC")
        case .multiprocessingState: ("KVM_GET_MP_STATE", "KVM_SET_MP_STATE")
        case .events: ("KVM_GET_VCPU_EVENTS", "KVM_SET_VCPU_EVENTS")
        case .debugRegisters: ("KVM_GET_DEBUGREGS", "KVM_SET_DEBUGREGS")
        }
    }

    var requests: (get: UInt, set: UInt) {
        switch self {
        case .specialRegisters: (CLINUX_KVM_GET_SREGS, CLINUX_KVM_SET_SREGS)
        case .registers: (CLINUX_KVM_GET_REGS, CLINUX_KVM_SET_REGS)
        case .fpu: (CLINUX_KVM_GET_FPU, CLINUX_KVM_SET_FPU)
        case .extendedState: (CLINUX_KVM_GET_XSAVE2, CLINUX_KVM_SET_XSAVE)
        case .extendedControlRegisters: (CLINUX_KVM_GET_XCRS, CLINUX_KVM_SET_XCRS)
        case .localAPIC: (CLINUX_KVM_GET_LAPIC, CLINUX_KVM_SET_LAPIC)
        case .multiprocessingState: (CLINUX_KVM_GET_MP_STATE, CLINUX_KVM_SET_MP_STATE)
        case .events: (CLINUX_KVM_GET_VCPU_EVENTS, CLINUX_KVM_SET_VCPU_EVENTS)
        case .debugRegisters: (CLINUX_KVM_GET_DEBUGREGS, CLINUX_KVM_SET_DEBUGREGS)
        }
    }

    /// The struct's size; the XSAVE area is as large as KVM_CAP_XSAVE2 says, at least 4 KiB.
    func size(extendedStateSize: Int) -> Int {
        switch self {
        case .specialRegisters: MemoryLayout<kvm_sregs>.size
        case .registers: MemoryLayout<kvm_regs>.size
        case .fpu: MemoryLayout<kvm_fpu>.size
        case .extendedState: extendedStateSize
        case .extendedControlRegisters: MemoryLayout<kvm_xcrs>.size
        case .localAPIC: MemoryLayout<kvm_lapic_state>.size
        case .multiprocessingState: MemoryLayout<kvm_mp_state>.size
        case .events: MemoryLayout<kvm_vcpu_events>.size
        case .debugRegisters: MemoryLayout<kvm_debugregs>.size
        }
    }
}
