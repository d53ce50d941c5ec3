import Glibc
import LinuxSystem
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
    ///
    /// A snapshot never replaces this VM's own RAM or display file, nor (unless `force`) a
    /// snapshot other snapshots in its directory name as their parent.
    package func writeSnapshot(
        to path: String, kind: SnapshotKind = .full, resume: Bool, force: Bool = false
    ) throws(MachineSnapshotError) -> WrittenSnapshot {
        let parentPath = dirtyPageTracker.parentPath
        var parent: ParentSnapshot?
        if kind == .diff {
            parent = try DiffSnapshotCheck.check(
                path, parentPath: parentPath, parentIdentity: dirtyPageTracker.parentIdentity,
                chainPaths: dirtyPageTracker.chainPaths, chainLength: dirtyPageTracker.chainLength)
        }
        let options = WriteOptions(force: force, protectedFiles: ownFiles())
        if let waitForFill = memoryFillWait.withLock({ $0 }), !waitForFill() { throw .memoryIncomplete }
        let wasRunning = control.currentState == .running
        if wasRunning {
            guard pause() else { throw .notPausable(state: runState.rawValue) }
        } else if control.currentState != .paused {
            throw .notPausable(state: runState.rawValue)
        }
        // Resumed after the snapshot if asked, and after a failure whatever was asked.
        var written = false
        defer { if wasRunning && (resume || !written) { _ = self.resume() } }
        let contents = try snapshotContents()
        switch kind {
        case .full:
            let summary: SnapshotWriteSummary
            do { summary = try SnapshotWriter.writeFull(memory: memory, contents: contents, to: path, options: options) } catch {
                throw .failed(.snapshot(error))
            }
            do {
                try dirtyPageTracker.startChain(at: path, identity: summary.identity!, virtualMachine: virtualMachine, memory: memory)
            } catch {
                throw .dirtyLogUnavailable(path: path, error)
            }
            written = true
            return WrittenSnapshot(path: path, kind: .full, parentPath: nil, summary: summary)
        case .diff:
            guard let parentPath, let parent else { throw .noParent }
            let dirtyPages: [String: PageBitmap]
            do { dirtyPages = try dirtyPageTracker.collect(virtualMachine: virtualMachine, memory: memory) } catch { throw .failed(.kvm(error)) }
            let summary: SnapshotWriteSummary
            do {
                summary = try SnapshotWriter.writeDiff(
                    memory: memory, dirtyPages: dirtyPages, parent: parent, contents: contents, to: path, options: options)
            } catch {
                throw .failed(.snapshot(error))
            }
            dirtyPageTracker.diffWritten(to: path, identity: summary.identity!)
            written = true
            return WrittenSnapshot(path: path, kind: .diff, parentPath: parentPath, summary: summary)
        }
    }

    /// Makes the snapshot at `path` this VM's base for diffs: KVM starts logging the guest's
    /// writes and the next diff names `path` as its parent. A restore calls it right after
    /// loading memory and state from the chain whose top file is `path`, before any vCPU runs.
    /// `filesBelow` counts the chain's files under `path`, so the chain's length limit holds.
    package func adoptSnapshotBase(path: String, identity: SnapshotIdentity, filesBelow: Int) throws(MachineError) {
        do {
            try dirtyPageTracker.startChain(at: path, identity: identity, filesBelow: filesBelow, virtualMachine: virtualMachine, memory: memory)
        } catch {
            throw .kvm(error)
        }
    }

    /// Makes the fork base about to be written at `path` (with id `snapshotID`) this VM's base
    /// for diffs: the parent at the fork's pause, each child before it runs. KVM logs from here,
    /// so a diff holds only this VM's own pages since the fork; it can be written once the base
    /// file is there.
    package func adoptForkBase(path: String, snapshotID: SnapshotID) throws(MachineError) {
        do {
            try dirtyPageTracker.startChain(
                at: path, identity: nil, expecting: snapshotID, virtualMachine: virtualMachine, memory: memory)
        } catch {
            throw .kvm(error)
        }
    }

    /// Writes a fork's frozen base as a full snapshot at `path`: `record` is the state saved at
    /// the fork's pause, and the pages come from the frozen backing files themselves (mapped
    /// afresh and only read), not from this VM's mapping, which holds its own changes since.
    /// Runs while every VM of the fork runs on.
    package func writeForkBase(
        to path: String, record: MachineStateRecord, snapshotID: SnapshotID
    ) throws(MachineSnapshotError) -> WrittenSnapshot {
        var regions: [GuestRegion] = []
        for region in memory.regions {
            guard let descriptor = region.frozenBaseDescriptor else {
                throw .failed(.incompatibleState("region \(region.name) is not frozen as a fork's base"))
            }
            let copy = dup(descriptor)
            guard copy >= 0 else { throw .failed(.incompatibleState("region \(region.name): dup of its base file failed (errno \(errno))")) }
            // Shared, so the writer finds the base's holes (SEEK_DATA); only read.
            do {
                regions.append(try GuestRegion(name: region.name, sizeInBytes: region.sizeInBytes, backing: .memfd, adopting: copy, path: nil))
            } catch { throw .failed(.memory(error)) }
        }
        let base: GuestMemoryMap
        do { base = try Self.restoredMemory(regions) } catch { throw .failed(error) }
        let contents: SnapshotContents
        do { contents = try record.contents() } catch { throw .failed(error) }
        var options = WriteOptions(protectedFiles: ownFiles())
        options.snapshotID = snapshotID
        do {
            let summary = try SnapshotWriter.writeFull(memory: base, contents: contents, to: path, options: options)
            return WrittenSnapshot(path: path, kind: .full, parentPath: nil, summary: summary)
        } catch {
            throw .failed(.snapshot(error))
        }
    }

    /// The files behind this VM's memory regions (RAM files, memfds, the display file): a
    /// snapshot never replaces them. (The control socket is refused as a socket.)
    private func ownFiles() -> [FileIdentity] {
        memory.regions.compactMap { region in region.fileDescriptor.flatMap { FileIdentity(descriptor: $0) } }
    }

    /// The paused machine's configuration and state sections.
    private func snapshotContents() throws(MachineSnapshotError) -> SnapshotContents {
        do {
            try virtio.syncDisks()  // the snapshot names the disks: what it restores must be on them
            return try saveState().contents()
        } catch { throw .failed(error) }
    }
}
