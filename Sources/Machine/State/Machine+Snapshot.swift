import FoundationEssentials
import SnapshotFormat

extension Machine {
    /// Pauses (if running), writes a full snapshot of memory and machine state to `path`, and
    /// resumes when `resume` is true and the machine was running. On failure the guest runs on
    /// as before and no file is left at `path` (the writer removes its temporary file).
    package func writeSnapshot(to path: String, resume: Bool) throws(MachineError) -> SnapshotWriteSummary {
        let wasRunning = control.currentState == .running
        if wasRunning {
            guard pause() else { throw .invalidConfiguration("cannot snapshot: the VM is \(stateName)") }
        } else if control.currentState != .paused {
            throw .invalidConfiguration("cannot snapshot: the VM is \(stateName)")
        }
        defer { if wasRunning && resume { _ = self.resume() } }
        let record = try saveState()
        let state: [UInt8]
        do { state = Array(try JSONEncoder().encode(record)) } catch {
            throw .invalidConfiguration("cannot encode the machine state: \(error)")
        }
        do {
            return try SnapshotWriter.writeFull(memory: memory, state: state, to: path)
        } catch {
            throw .snapshot(error)
        }
    }
}
