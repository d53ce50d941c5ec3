import LinuxSystem
import Glibc
import SystemPackage

/// A working set kept beside its snapshot: `SNAPSHOT.workingset`, mode 0600, replaced atomically.
package enum WorkingSetFile {
    /// The working-set file of the snapshot at `snapshotPath`.
    package static func path(forSnapshot snapshotPath: String) -> String { snapshotPath + ".workingset" }

    /// The set stored at `path`, nil if there is no file.
    package static func read(_ path: String) throws(PageSourceError) -> WorkingSet? {
        let bytes: [UInt8]
        do {
            let file = try OwnedFileDescriptor.open(path, .readOnly)
            bytes = try file.readWholeFile(limit: WorkingSet.headerSize + WorkingSet.maximumPages * 8 + 4, subject: path)
        } catch {
            if error.errno == .noSuchFileOrDirectory { return nil }
            throw .workingSet("cannot read working set \(path): \(error.call) failed: \(error.errno)")
        }
        return try WorkingSet(decoding: bytes, origin: path)
    }

    /// Writes `set` to `path` (mode 0600) through a temporary file and rename(2).
    package static func write(_ set: WorkingSet, to path: String) throws(PageSourceError) {
        do { try AtomicFile.write(set.encoded(), to: path) } catch {
            throw .workingSet("cannot write working set \(path): \(error.call) failed: \(error.errno)")
        }
    }
}
