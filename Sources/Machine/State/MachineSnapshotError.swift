import KVM
import SnapshotFormat

/// Why `Machine.writeSnapshot` wrote nothing (or, for `dirtyLogUnavailable`, nothing a diff
/// can follow); each message names the file and what to do instead.
package enum MachineSnapshotError: Error, CustomStringConvertible {
    /// The VM is neither running nor paused (it is stopping).
    case notPausable(state: String)
    /// A diff was asked for before any snapshot of this VM.
    case noParent
    /// The file the diff would name as its parent is no longer where it was written.
    case parentMissing(parentPath: String)
    /// The diff would not sit in its parent's directory, where readers look for the parent.
    case notBesideParent(path: String, parentPath: String)
    /// The diff would replace a file of its own chain (its parent or an older one).
    case replacesChainFile(path: String)
    /// The chain already has as many files as readers accept.
    case chainTooLong(files: Int)
    /// The parent's file was replaced by another snapshot since it was written.
    case parentReplaced(parentPath: String)
    /// Guest memory is not all present (a lazy restore's fill failed), so it cannot be written.
    case memoryIncomplete
    /// Saving the state or writing the file failed; the guest runs on as before.
    case failed(MachineError)
    /// The full snapshot at `path` was written, but KVM would not log dirty pages after it.
    case dirtyLogUnavailable(path: String, KVMError)

    package var description: String {
        switch self {
        case .notPausable(let state):
            "cannot snapshot: the VM is \(state)"
        case .noParent:
            "a diff snapshot needs a previous snapshot of this VM; take a full one first"
        case .parentMissing(let parentPath):
            "the previous snapshot \(parentPath) is gone, and a diff needs it as its parent; take a full snapshot first"
        case .notBesideParent(let path, let parentPath):
            "diff snapshot \(path) must be in the directory of its parent \(parentPath), where readers look for the parent"
        case .replacesChainFile(let path):
            "diff snapshot \(path) would replace a file its own chain needs; choose a new name"
        case .chainTooLong(let files):
            "the snapshot chain already has \(files) files, the most readers accept; take a full snapshot, or merge the chain "
                + "(engram snapshot-merge) and restore from the merged file"
        case .parentReplaced(let parentPath):
            "the previous snapshot \(parentPath) was replaced by another file since it was written, so a diff on it would hold the "
                + "wrong memory; take a full snapshot first"
        case .memoryIncomplete:
            "cannot snapshot: guest memory is incomplete (its lazy restore failed)"
        case .failed(let error):
            error.description
        case .dirtyLogUnavailable(let path, let error):
            "snapshot \(path) was written, but KVM dirty logging could not be turned on (\(error)); no diff can follow it"
        }
    }
}
