import CLinux
import GuestMemory
import LinuxSystem

/// A KVM virtual machine: memory slots, the in-kernel interrupt controllers and timer, vCPUs.
package final class VirtualMachine: Sendable {
    let descriptor: OwnedFileDescriptor
    let system: KVMSystem
    /// Every slot's mapping and whether KVM logs its dirty pages: keeps the region mapped for as
    /// long as KVM may touch it, and lets dirty logging re-issue the slot with other flags.
    let slots = Locked<[UInt32: (mapping: GuestMapping, logsDirtyPages: Bool)]>([:])

    init(descriptor: OwnedFileDescriptor, system: KVMSystem) {
        self.descriptor = descriptor
        self.system = system
    }

    /// KVM_SET_TSS_ADDR and KVM_SET_IDENTITY_MAP_ADDR: three pages and one page KVM keeps for itself on Intel hosts.
    package func setSystemAreas(tssAddress: GuestAddress, identityMapAddress: GuestAddress) throws(KVMError) {
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_SET_TSS_ADDR, "KVM_SET_TSS_ADDR", integer: UInt(tssAddress.rawValue))
        var address = identityMapAddress.rawValue
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_SET_IDENTITY_MAP_ADDR, "KVM_SET_IDENTITY_MAP_ADDR", value: &address)
    }

    /// KVM_CREATE_IRQCHIP: in-kernel 8259 pair, IOAPIC and local APICs.
    package func createInterruptController() throws(KVMError) {
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_CREATE_IRQCHIP, "KVM_CREATE_IRQCHIP")
    }

    /// KVM_CREATE_PIT2: in-kernel 8254 timer on IRQ 0.
    package func createTimer() throws(KVMError) {
        var config = kvm_pit_config()
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_CREATE_PIT2, "KVM_CREATE_PIT2", value: &config)
    }

    /// KVM_GET_PIT2: the in-kernel timer's state, as the kernel struct's bytes.
    package func timerState() throws(KVMError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: MemoryLayout<kvm_pit_state2>.size)
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_GET_PIT2, "KVM_GET_PIT2", buffer: &bytes)
        return bytes
    }

    /// KVM_SET_PIT2 from bytes `timerState` returned: reloads the in-kernel timer, dropping
    /// ticks it would otherwise re-inject.
    package func setTimerState(_ bytes: [UInt8]) throws(KVMError) {
        guard bytes.count == MemoryLayout<kvm_pit_state2>.size else { throw .ioctl(name: "KVM_SET_PIT2 (bad size)", .invalidArgument) }
        var copy = bytes
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_SET_PIT2, "KVM_SET_PIT2", buffer: &copy)
    }

    /// KVM_SET_USER_MEMORY_REGION for one mapping; the region stays alive while the slot exists.
    /// With `logDirtyPages` KVM records every page the guest writes (see `dirtyPages(slot:)`).
    package func map(_ mapping: GuestMapping, slot: UInt32, logDirtyPages: Bool = false) throws(KVMError) {
        var region = kvm_userspace_memory_region()
        region.slot = slot
        region.flags = logDirtyPages ? UInt32(KVM_MEM_LOG_DIRTY_PAGES) : 0
        region.guest_phys_addr = mapping.guestAddress.rawValue
        region.memory_size = mapping.sizeInBytes
        region.userspace_addr = mapping.region.hostAddress(at: mapping.regionOffset)
        // Remembered before the call so the region outlives any moment KVM may map it.
        let previous = slots.withLock { $0.updateValue((mapping, logDirtyPages), forKey: slot) }
        do {
            try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_SET_USER_MEMORY_REGION, "KVM_SET_USER_MEMORY_REGION", value: &region)
        } catch {
            // The kernel kept the slot as it was.
            slots.withLock { $0[slot] = previous }
            throw error
        }
    }

    /// KVM_IRQ_LINE: drives interrupt line `irq` (a GSI) to `level`.
    package func setInterruptLine(_ irq: UInt32, level: Bool) throws(KVMError) {
        var line = kvm_irq_level()
        line.irq = irq
        line.level = level ? 1 : 0
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_IRQ_LINE, "KVM_IRQ_LINE", value: &line)
    }

    /// KVM_CREATE_VCPU with its shared run structure mapped.
    package func createVirtualCPU(id: UInt32) throws(KVMError) -> VirtualCPU {
        let fd = try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_CREATE_VCPU, "KVM_CREATE_VCPU", integer: UInt(id))
        return try VirtualCPU(id: id, descriptor: OwnedFileDescriptor(taking: fd), machine: self, mappingSize: system.vcpuMappingSize,
                              extendedStateSize: system.extendedStateSize)
    }
}
