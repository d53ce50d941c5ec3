import CLinux

/// The in-kernel interrupt controllers KVM_GET/SET_IRQCHIP reach.
package enum InterruptControllerChip: UInt32, CaseIterable, Codable, Sendable {
    case picMaster = 0, picSlave = 1, ioAPIC = 2
}

extension VirtualMachine {
    /// KVM_GET_IRQCHIP: one controller's state as the kernel struct's bytes.
    package func interruptControllerState(_ chip: InterruptControllerChip) throws(KVMError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: MemoryLayout<kvm_irqchip>.size)
        bytes[0] = UInt8(chip.rawValue)  // chip_id, little-endian u32 at offset 0
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_GET_IRQCHIP, "KVM_GET_IRQCHIP", buffer: &bytes)
        return bytes
    }

    /// KVM_SET_IRQCHIP from bytes `interruptControllerState` returned.
    package func setInterruptControllerState(_ bytes: [UInt8]) throws(KVMError) {
        guard bytes.count == MemoryLayout<kvm_irqchip>.size else { throw .ioctl(name: "KVM_SET_IRQCHIP (bad size)", .invalidArgument) }
        var copy = bytes
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_SET_IRQCHIP, "KVM_SET_IRQCHIP", buffer: &copy)
    }

    /// KVM_GET_CLOCK: the VM's kvmclock base, in nanoseconds.
    package func clock() throws(KVMError) -> UInt64 {
        var data = kvm_clock_data()
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_GET_CLOCK, "KVM_GET_CLOCK", value: &data)
        return data.clock
    }

    /// KVM_SET_CLOCK: sets the kvmclock base, so guest time continues from `nanoseconds`.
    package func setClock(_ nanoseconds: UInt64) throws(KVMError) {
        var data = kvm_clock_data()
        data.clock = nanoseconds
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_SET_CLOCK, "KVM_SET_CLOCK", value: &data)
    }
}
