import FoundationEssentials
import GuestMemory
import SnapshotFormat

extension Machine {
    /// Pauses (if running), writes a snapshot of memory and machine state to `path`, and
    /// resumes when `resume` is true and the machine was running. On failure the guest runs on
    /// as before and no file is left at `path` (the writer removes its temporary file).
    ///
    /// A full snapshot holds all of memory and starts a chain: from then on KVM logs the
    /// guest's writes. A diff holds only the pages written since the previous snapshot of this
    /// VM, which it names as its parent; it must go in the parent's directory, and it becomes
    /// the parent of the next diff. Pages a failed diff fetched from the log join the next one.
    package func writeSnapshot(
        to path: String, kind: SnapshotKind = .full, resume: Bool
    ) throws(MachineSnapshotError) -> WrittenSnapshot {
        let parentPath = dirtyPageTracker.parentPath
        if kind == .diff { try DiffSnapshotCheck.check(path, parentPath: parentPath, chainPaths: dirtyPageTracker.chainPaths) }
        if let waitForFill = memoryFillWait.withLock({ $0 }), !waitForFill() { throw .memoryIncomplete }
        let wasRunning = control.currentState == .running
        if wasRunning {
            guard pause() else { throw .notPausable(state: runState.rawValue) }
        } else if control.currentState != .paused {
            throw .notPausable(state: runState.rawValue)
        }
        defer { if wasRunning && resume { _ = self.resume() } }
        let state = try encodedState()
        switch kind {
        case .full:
            let summary: SnapshotWriteSummary
            do { summary = try SnapshotWriter.writeFull(memory: memory, state: state, to: path) } catch { throw .failed(.snapshot(error)) }
            do {
                try dirtyPageTracker.startChain(at: path, virtualMachine: virtualMachine, memory: memory)
            } catch {
                throw .dirtyLogUnavailable(path: path, error)
            }
            return WrittenSnapshot(path: path, kind: .full, parentPath: nil, summary: summary)
        case .diff:
            guard let parentPath else { throw .noParent }
            let dirtyPages: [String: PageBitmap]
            do { dirtyPages = try dirtyPageTracker.collect(virtualMachine: virtualMachine, memory: memory) } catch { throw .failed(.kvm(error)) }
            let summary: SnapshotWriteSummary
            do {
                summary = try SnapshotWriter.writeDiff(
                    memory: memory, dirtyPages: dirtyPages, parentFileName: DiffSnapshotCheck.fileName(of: parentPath), state: state, to: path)
            } catch {
                throw .failed(.snapshot(error))
            }
            dirtyPageTracker.diffWritten(to: path)
            return WrittenSnapshot(path: path, kind: .diff, parentPath: parentPath, summary: summary)
        }
    }

    /// Makes the snapshot at `path` this VM's base for diffs: KVM starts logging the guest's
    /// writes and the next diff names `path` as its parent. A restore calls it right after
    /// loading memory and state from the chain whose top file is `path`, before any vCPU runs.
    package func adoptSnapshotBase(path: String) throws(MachineError) {
        do { try dirtyPageTracker.startChain(at: path, virtualMachine: virtualMachine, memory: memory) } catch { throw .kvm(error) }
    }

    /// The paused machine's state as the snapshot's state section.
    private func encodedState() throws(MachineSnapshotError) -> [UInt8] {
        let record: MachineStateRecord
        do { record = try saveState() } catch { throw .failed(error) }
        do { return Array(try JSONEncoder().encode(record)) } catch {
            throw .failed(.stateEncoding("cannot encode the machine state: \(error)"))
        }
    }
}
