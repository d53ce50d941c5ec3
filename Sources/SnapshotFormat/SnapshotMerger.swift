import Glibc
import LinuxSystem

/// Merges a snapshot chain (a diff and the parents it names, down to a full snapshot) into one
/// full snapshot, so a restore reads one file and the older files can go.
///
/// The output is what a reader composing the chain sees: each page from the newest file that
/// stores it, zero pages as holes, and the top file's state section. It is written by
/// `SnapshotWriter`, so it is crash-safe the same way (temporary file, fsync, rename) and
/// mode 0600. Every page is checked against its CRC as it is read.
package enum SnapshotMerger {
    /// Writes the chain whose top file is `top` to `output` as one full snapshot. An existing
    /// file at `output` is replaced only with `replacingExisting`; otherwise it is refused before
    /// any page is read, and again atomically when the output is put in place.
    @discardableResult
    package static func merge(
        top: String, into output: String, replacingExisting: Bool = false
    ) throws(SnapshotFormatError) -> SnapshotMergeSummary {
        if !replacingExisting {
            if FileStatus(path: output, followingLinks: false) != nil {
                throw .unwritable(path: output, reason: "a file already exists there; refusing to replace it")
            }
        }
        let chain = try SnapshotChain(path: top)
        let write = try SnapshotWriter.writeFull(
            composing: chain, to: output, options: WriteOptions(replacingExisting: replacingExisting, force: replacingExisting))
        return SnapshotMergeSummary(filesMerged: chain.files.count, write: write)
    }
}
