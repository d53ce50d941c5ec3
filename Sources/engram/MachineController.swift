import ControlAPI
import Devices
import Inspect
import GuestMemory
import Machine

/// Answers the control API for a running machine.
struct MachineController: VMControl {
    let machine: Machine
    /// Live-update settings and history of this VMM process.
    let liveUpdate: LiveUpdateSession
    /// Set for a restored VM.
    var restore: RestoreReport? = nil
    /// Set for a lazily restored VM while (and after) its memory fills.
    var lazyFill: LazyFill? = nil
    /// This process's live migrations.
    let migrations = MigrationSessions()

    func vmInfo() -> VMInfo {
        VMInfo(state: machine.stateName, vcpus: machine.configuration.cpuCount, uptimeSeconds: machine.uptimeSeconds,
               memorySizeInBytes: machine.configuration.memorySizeInBytes)
    }

    func memoryRegions() -> [MemoryRegionInfo] { RegionReport.regions(of: machine.memory) }

    func processorRegisters() throws(VMControlError) -> [ProcessorRegisters] {
        guard machine.stateName == "paused" else { throw .invalidState(operation: "read vCPU registers", state: machine.stateName) }
        do {
            return try machine.registerBlocks().compactMap { block in
                ProcessorState(id: Int(block.id), kvmSpecialRegisters: block.specialRegisters, kvmRegisters: block.registers).map {
                    ProcessorRegisters(id: $0.id, cr0: $0.cr0, cr3: $0.cr3, cr4: $0.cr4, efer: $0.efer, rip: $0.rip)
                }
            }
        } catch {
            throw .failed(operation: "read vCPU registers", reason: "\(error)")
        }
    }

    func memoryStatistics() -> MemoryStatistics { MemoryStatistics(restore: restore?.info, lazy: lazyFill?.info) }

    func pause() throws(VMControlError) {
        guard machine.pause() else { throw .invalidState(operation: "pause", state: machine.stateName) }
    }

    func resume() throws(VMControlError) {
        guard machine.resume() else { throw .invalidState(operation: "resume", state: machine.stateName) }
    }

    func keyboard(_ events: [KeyboardEvent]) throws(VMControlError) -> Int {
        guard machine.stateName != "stopping" else { throw .invalidState(operation: "type keys", state: "stopping") }
        return machine.keyboardInput(events.map { KeyEvent(keysym: $0.keysym, down: $0.down) })
    }

    func shutdown() throws(VMControlError) {
        guard machine.stateName != "stopping" else { throw .invalidState(operation: "shut down", state: "stopping") }
        machine.finish(.shutdownRequested)
    }
}
