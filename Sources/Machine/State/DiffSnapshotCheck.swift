import LinuxSystem
import SnapshotFormat

/// Checks where a diff snapshot may go before the VM is paused for it.
///
/// A reader finds a diff's parent by its file name in the diff's own directory (docs/FORMAT.md
/// "Chains and merging") and checks it is the very snapshot the diff was taken against, so the
/// diff must be written beside its parent, the parent must not have been replaced since, the
/// diff must not replace a file the chain still needs, and the chain must stay within what
/// readers accept. Paths are compared by device and inode, so two spellings of one directory or
/// file are the same.
enum DiffSnapshotCheck {
    /// Throws unless a diff at `path` can name `parentPath` (whose identity was `parentIdentity`)
    /// as its parent; `chainPaths` are the files from the chain's base up to the parent, and
    /// `chainLength` counts the chain's files.
    static func check(
        _ path: String, parentPath: String?, parentIdentity: SnapshotIdentity?, chainPaths: [String], chainLength: Int
    ) throws(MachineSnapshotError) -> ParentSnapshot {
        guard let parentPath else { throw .noParent }
        guard identity(of: parentPath) != nil else { throw .parentMissing(parentPath: parentPath) }
        // A parent chosen ahead (a fork's base) whose file does not carry the promised id.
        guard let parentIdentity else { throw .parentReplaced(parentPath: parentPath) }
        guard let target = identity(of: FileSystem.directory(of: path)), target == identity(of: FileSystem.directory(of: parentPath)) else {
            throw .notBesideParent(path: path, parentPath: parentPath)
        }
        if let existing = identity(of: path), chainPaths.contains(where: { identity(of: $0) == existing }) {
            throw .replacesChainFile(path: path)
        }
        guard chainLength < SnapshotLayout.maximumChainFiles else { throw .chainTooLong(files: chainLength) }
        guard let found = try? SnapshotDirectory.header(of: parentPath).identity, found == parentIdentity else {
            throw .parentReplaced(parentPath: parentPath)
        }
        return ParentSnapshot(fileName: FileSystem.fileName(of: parentPath), identity: parentIdentity)
    }

    /// The device and inode of what `path` names (following symbolic links); nil if nothing is there.
    private static func identity(of path: String) -> FileIdentity? { FileStatus(path: path)?.identity }
}
