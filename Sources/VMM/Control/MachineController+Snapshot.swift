import LinuxSystem
import ControlAPI
import Machine
import SnapshotFormat

extension MachineController {
    /// PUT /vm/snapshot: writes a full or diff snapshot and reports it. A diff the VM cannot
    /// take yet (no previous snapshot, a chain at its limit, a replaced parent) is 409; one asked
    /// for in the wrong place, or over a snapshot others depend on, is 400.
    package func snapshot(_ request: SnapshotRequest) throws(VMControlError) -> SnapshotReport {
        try refuseDuringMigration("snapshot")
        let started = ContinuousClock.now
        let kind: SnapshotKind = request.kind == .diff ? .diff : .full
        let written: WrittenSnapshot
        do {
            written = try machine.writeSnapshot(to: request.path, kind: kind, resume: request.resume ?? true, force: request.force ?? false)
        } catch {
            switch error {
            case .notPausable(let state): throw .invalidState(operation: "snapshot", state: state)
            case .noParent, .parentMissing, .chainTooLong, .parentReplaced: throw .conflict(reason: error.description)
            case .failed(.snapshot(.refusedPath)): throw .invalidRequest(reason: error.description)
            case .notBesideParent, .replacesChainFile: throw .invalidRequest(reason: error.description)
            case .failed, .dirtyLogUnavailable, .memoryIncomplete: throw .failed(operation: "snapshot", reason: error.description)
            }
        }
        let elapsed = ContinuousClock.now - started
        let summary = written.summary
        return SnapshotReport(
            path: written.path, kind: written.kind == .diff ? .diff : .full, parent: written.parentPath,
            fileSizeInBytes: summary.fileSizeInBytes, bytesWritten: summary.bytesWritten,
            pagesWritten: summary.pagesWritten, pagesZero: summary.pagesZero,
            durationSeconds: elapsed.inSeconds,
            state: machine.runState.rawValue)
    }
}
