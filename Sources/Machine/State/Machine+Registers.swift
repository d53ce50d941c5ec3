import KVM

extension Machine {
    /// Each vCPU's `kvm_sregs` and `kvm_regs` bytes (KVM's stable ABI), for tools that read
    /// control registers. The machine must be paused: a running vCPU's registers change under us.
    package func registerBlocks() throws(MachineError) -> [(id: UInt32, specialRegisters: [UInt8], registers: [UInt8])] {
        guard control.currentState == .paused else { throw .notPaused(operation: "read its vCPU registers") }
        do {
            return try vcpus.map { (vcpu) throws(KVMError) in
                (vcpu.id, try vcpu.stateBlock(.specialRegisters), try vcpu.stateBlock(.registers))
            }
        } catch {
            throw .kvm(error)
        }
    }
}
