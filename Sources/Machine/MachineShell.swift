import KVM

/// A KVM VM with its interrupt controller, timer and memory slots, not yet a machine
/// (`Machine.prepareShell(memory:)`). Slot registration is the slow part of building a VM on
/// some hosts (KVM allocates per-page metadata), so a restore overlaps it with decoding.
package struct MachineShell: Sendable {
    let kvm: KVMSystem
    let virtualMachine: VirtualMachine
    let supportedCPUID: [CPUIDEntry]
}
