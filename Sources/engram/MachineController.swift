import ControlAPI
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

    func vmInfo() -> VMInfo {
        VMInfo(state: machine.stateName, vcpus: machine.configuration.cpuCount, uptimeSeconds: machine.uptimeSeconds,
               memorySizeInBytes: machine.configuration.memorySizeInBytes)
    }

    func memoryRegions() -> [MemoryRegionInfo] { RegionReport.regions(of: machine.memory) }

    func memoryStatistics() -> MemoryStatistics { MemoryStatistics(restore: restore?.info, lazy: lazyFill?.info) }

    func pause() throws(VMControlError) {
        guard machine.pause() else { throw .invalidState(operation: "pause", state: machine.stateName) }
    }

    func resume() throws(VMControlError) {
        guard machine.resume() else { throw .invalidState(operation: "resume", state: machine.stateName) }
    }

    func shutdown() throws(VMControlError) {
        guard machine.stateName != "stopping" else { throw .invalidState(operation: "shut down", state: "stopping") }
        machine.finish(.shutdownRequested)
    }
}
