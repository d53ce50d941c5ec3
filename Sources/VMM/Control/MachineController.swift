import ControlAPI
import Devices
import Inspect
import GuestMemory
import Machine

/// Answers the control API for a running machine.
package struct MachineController: VMControl {
    package let machine: Machine
    /// Live-update settings and history of this VMM process.
    package let liveUpdate: LiveUpdateSession
    /// Set for a restored VM.
    package var restore: RestoreReport? = nil
    /// Set for a lazily restored VM while (and after) its memory fills.
    package var lazyFill: LazyFill? = nil
    /// This process's live migrations.
    package let migrations = MigrationSessions()
    /// Children started ahead of the next fork.
    package let forkReserve = ForkReserve()

    package func vmInfo() -> VMInfo {
        VMInfo(state: machine.runState.rawValue, vcpus: machine.configuration.cpuCount, uptimeSeconds: machine.uptimeSeconds,
               memorySizeInBytes: machine.configuration.memorySizeInBytes, devices: devices())
    }

    package func memoryRegions() -> [MemoryRegionInfo] { RegionReport.regions(of: machine.memory) }

    package func processorRegisters() throws(VMControlError) -> [ProcessorRegisters] {
        guard machine.runState == .paused else { throw .invalidState(operation: "read vCPU registers", state: machine.runState.rawValue) }
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

    package func memoryStatistics() -> MemoryStatistics { MemoryStatistics(restore: restore?.info, lazy: lazyFill?.info) }

    package func pause() throws(VMControlError) {
        guard machine.pause() else { throw .invalidState(operation: "pause", state: machine.runState.rawValue) }
    }

    package func resume() throws(VMControlError) {
        // A migration pauses the source for its last pass and then the destination runs the
        // guest: resumed here too, it would run twice on the same disks.
        try refuseDuringMigration("resume")
        guard machine.resume() else { throw .invalidState(operation: "resume", state: machine.runState.rawValue) }
    }

    package func keyboard(_ events: [KeyboardEvent]) throws(VMControlError) -> Int {
        guard machine.runState != .stopping else { throw .invalidState(operation: "type keys", state: "stopping") }
        return machine.keyboardInput(events.map { KeyEvent(keysym: $0.keysym, down: $0.down) })
    }

    package func shutdown() throws(VMControlError) {
        guard machine.runState != .stopping else { throw .invalidState(operation: "shut down", state: "stopping") }
        machine.finish(.shutdownRequested)
    }
}
