import ControlAPI
import Machine

/// Answers a standby VMM's control API: its shape, PUT /vm/restore (built here, on the API's
/// worker thread, then run by the main thread), and shutdown while it is unused.
struct StandbyController: StandbyControl {
    let standby: StandbyMachine
    let options: StandbyOptions
    let handoff: StandbyHandoff

    func standbyInfo() -> VMInfo {
        VMInfo(state: "standby", vcpus: standby.cpuCount, uptimeSeconds: 0, memorySizeInBytes: standby.memorySizeInBytes)
    }

    func restore(_ body: StandbyRestoreRequest) throws(VMControlError) -> StandbyRestoreReport {
        let arrived = ContinuousClock.now
        let vm: RestoredVM
        do {
            vm = try VMRestore.build(try options.request(for: body), standby: standby)
        } catch {
            // Whatever the snapshot or the devices it asks for got wrong, the standby VMM is as it was: the client's to fix.
            throw .invalidRequest(reason: error.description)
        }
        switch handoff.handOver(vm, arrived: arrived) {
        case .success(let duration):
            return StandbyRestoreReport(state: "running", snapshot: body.snapshot, memory: vm.report.mode,
                                        millisecondsToRunning: duration.inMilliseconds)
        case .failure(let error): throw .failed(operation: "restore \(body.snapshot)", reason: error.description)
        case nil: throw .invalidState(operation: "restore", state: "ending")
        }
    }

    func shutdown() throws(VMControlError) {
        guard handoff.end() else { throw .invalidState(operation: "shut down the standby VMM", state: "restoring") }
    }
}
