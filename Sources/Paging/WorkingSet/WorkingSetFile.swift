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
            let file: FileDescriptor
            do { file = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) } catch Errno.noSuchFileOrDirectory {
                return nil
            }
            bytes = try file.closeAfter { () throws -> [UInt8] in
                let size = try file.seek(offset: 0, from: .end)
                guard size <= WorkingSet.headerSize + WorkingSet.maximumPages * 8 + 4 else { throw Errno.fileTooLarge }
                // SAFETY: the read fills at most `size` bytes of the fresh buffer and reports how many.
                return try unsafe [UInt8](unsafeUninitializedCapacity: Int(size)) { buffer, count in
                    count = try unsafe file.read(fromAbsoluteOffset: 0, into: UnsafeMutableRawBufferPointer(buffer))
                }
            }
        } catch {
            throw .workingSet("cannot read working set \(path): \(error)")
        }
        return try WorkingSet(decoding: bytes, origin: path)
    }

    /// Writes `set` to `path` (mode 0600) through a temporary file and rename(2).
    package static func write(_ set: WorkingSet, to path: String) throws(PageSourceError) {
        let temporary = path + ".tmp-\(getpid())"
        do {
            let file = try FileDescriptor.open(
                FilePath(temporary), .writeOnly, options: [.create, .exclusiveCreate, .truncate, .closeOnExec],
                permissions: [.ownerReadWrite])
            try file.closeAfter { _ = try file.writeAll(set.encoded()) }
            guard unsafe rename(temporary, path) == 0 else { throw Errno(rawValue: errno) }
        } catch {
            _ = unsafe unlink(temporary)
            throw .workingSet("cannot write working set \(path): \(error)")
        }
    }
}
