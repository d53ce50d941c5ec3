import GuestMemory
import KVM
import LinuxSystem

/// A KVM VM with its interrupt controller and timer, its memory slots being registered on
/// another thread (`Machine.prepareShell(memory:)`). Slot registration is the slow part of
/// building a VM on some hosts (KVM allocates per-page metadata for shadow paging), and nothing
/// else needs it before the vCPUs run, so it overlaps decoding the state and setting up vCPUs.
package struct MachineShell: Sendable {
    let kvm: KVMSystem
    let virtualMachine: VirtualMachine
    let supportedCPUID: [CPUIDEntry]
    let slots: SlotRegistration
    /// vCPUs created ahead (a standby VMM's), taken by the machine in id order instead of new ones.
    var readyCPUs: [VirtualCPU] = []
    /// A thread per ready vCPU, started ahead and waiting to run it (`ReservedThread`).
    var cpuThreads: [ReservedThread] = []

    /// The shell with `count` vCPUs created now, and a thread for each, for a machine built
    /// later (KVM_CREATE_VCPU is a millisecond or so per vCPU on some hosts; a thread's creation
    /// and filter a tenth of one). A vCPU that never ran takes any CPUID and state.
    package func creatingCPUs(_ count: Int) throws(MachineError) -> MachineShell {
        var shell = self
        do {
            shell.readyCPUs = try (0..<UInt32(count)).map { (id) throws(KVMError) in try virtualMachine.createVirtualCPU(id: id) }
        } catch { throw .kvm(error) }
        do {
            shell.cpuThreads = try (0..<count).map { (id) throws(SystemError) in try ReservedThread(name: "vcpu\(id)", role: .vcpu) }
        } catch { throw .thread(error) }
        return shell
    }

    /// Pays the first JSON coding of a machine state's sections ahead (see `MachineStateRecord.warmUpCoding`).
    @discardableResult
    package func warmUpStateCoding() -> MachineStateRecord { MachineStateRecord.warmUpCoding(cpuid: supportedCPUID) }

    /// Waits until every memory slot is registered (a standby VMM's shell is made ready whole).
    package func waitForSlots() throws(MachineError) {
        do { try slots.wait() } catch { throw .kvm(error) }
    }
}

/// Registers a slot per mapping in the background; `wait()` returns once all are in.
final class SlotRegistration: Sendable {
    private let work: BackgroundWork<Void, KVMError>

    init(_ virtualMachine: VirtualMachine, mappings: [GuestMapping]) {
        work = BackgroundWork { () throws(KVMError) in
            for (slot, mapping) in mappings.enumerated() { try virtualMachine.map(mapping, slot: UInt32(slot)) }
        }
    }

    /// Waits until every slot is registered; rethrows the first failure.
    func wait() throws(KVMError) { try work.result() }
}
