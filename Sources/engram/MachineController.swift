import ControlAPI
import GuestMemory
import Machine

/// Answers the control API for a running machine.
struct MachineController: VMControl {
    let machine: Machine

    func vmInfo() -> VMInfo {
        VMInfo(state: machine.stateName, vcpus: machine.configuration.cpuCount, uptimeSeconds: machine.uptimeSeconds,
               memorySizeInBytes: machine.configuration.memorySizeInBytes)
    }

    func memoryRegions() -> [MemoryRegionInfo] { RegionReport.regions(of: machine.memory) }

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
