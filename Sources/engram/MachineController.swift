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

extension MachineController {
    func snapshot(_ request: SnapshotRequest) throws(VMControlError) -> SnapshotReport {
        let started = ContinuousClock.now
        do {
            let summary = try machine.writeSnapshot(to: request.path, resume: request.resume ?? true)
            let elapsed = ContinuousClock.now - started
            return SnapshotReport(
                path: request.path, kind: "full", fileSizeInBytes: summary.fileSizeInBytes, bytesWritten: summary.bytesWritten,
                pagesWritten: summary.pagesWritten, pagesZero: summary.pagesZero,
                durationSeconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                state: machine.stateName)
        } catch {
            throw .failed(operation: "snapshot", reason: error.description)
        }
    }
}
