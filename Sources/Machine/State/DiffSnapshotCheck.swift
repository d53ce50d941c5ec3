import LinuxSystem

/// Checks where a diff snapshot may go before the VM is paused for it.
///
/// A reader finds a diff's parent by its file name in the diff's own directory (docs/FORMAT.md
/// "Chains and merging"), so the diff must be written beside its parent, and must not replace
/// a file the chain still needs. Paths are compared by device and inode, so two spellings of
/// one directory or file are the same.
enum DiffSnapshotCheck {
    /// Throws unless a diff at `path` can name `parentPath` as its parent; `chainPaths` are the
    /// files from the chain's base up to the parent.
    static func check(_ path: String, parentPath: String?, chainPaths: [String]) throws(MachineSnapshotError) {
        guard let parentPath else { throw .noParent }
        guard FileIdentity(of: parentPath) != nil else { throw .parentMissing(parentPath: parentPath) }
        guard let target = FileIdentity(of: directory(of: path)), target == FileIdentity(of: directory(of: parentPath)) else {
            throw .notBesideParent(path: path, parentPath: parentPath)
        }
        if let existing = FileIdentity(of: path), chainPaths.contains(where: { FileIdentity(of: $0) == existing }) {
            throw .replacesChainFile(path: path)
        }
    }

    /// The file name a diff records for its parent: the last component of `path`.
    static func fileName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// The directory holding `path` ("." for a bare name).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// A file's device and inode number.
private struct FileIdentity: Equatable {
    let device: UInt64
    let inode: UInt64

    /// The identity of what `path` names (following symbolic links); nil if it does not exist.
    init?(of path: String) {
        guard let status = FileStatus(path: path) else { return nil }
        device = status.device
        inode = status.inode
    }
}
