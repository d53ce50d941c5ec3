import Glibc
import LinuxSystem

/// Questions about the snapshots in one directory: which diffs name a file as their parent.
package enum SnapshotDirectory {
    /// The diffs in `path`'s directory whose parent is the snapshot now at `path` (by name and,
    /// for version 2 diffs, by identity); empty if `path` is not a snapshot.
    package static func dependents(of path: String) -> [String] {
        // Only a regular file can be a snapshot (and opening a FIFO to look would block).
        guard FileStatus(path: path, followingLinks: false)?.kind == .regular, let target = try? header(of: path) else { return [] }
        let directory = FileSystem.directory(of: path)
        let name = FileSystem.fileName(of: path)
        var found: [String] = []
        for entry in FileSystem.entries(of: directory) ?? [] where entry != name {
            let candidate = directory + "/" + entry
            guard let status = FileStatus(path: candidate, followingLinks: false), status.kind == .regular,
                  let child = try? header(of: candidate), child.kind == .diff, child.parentFileName == name
            else { continue }
            if child.version >= 2, child.parent != target.identity { continue }
            found.append(candidate)
        }
        return found.sorted()
    }

    /// Refuses to write at `path` over a snapshot other snapshots depend on, unless `options.force`.
    static func checkReplaceable(_ path: String, options: WriteOptions) throws(SnapshotFormatError) {
        guard !options.force, options.replacingExisting else { return }
        let dependents = dependents(of: path)
        guard dependents.isEmpty else {
            let names = dependents.prefix(3).map { FileSystem.fileName(of: $0) }.joined(separator: ", ")
            throw .refusedPath(
                path: path,
                reason: "it is the parent of \(dependents.count) diff snapshot(s) (\(names)), which would then hold the wrong memory; "
                    + "write elsewhere, merge them first, or use --force")
        }
    }

    /// The header of the snapshot at `path`, checked (CRC and fields) but without its tables.
    package static func header(of path: String) throws(SnapshotFormatError) -> FileHeader {
        let file: OwnedFileDescriptor
        do { file = try OwnedFileDescriptor.open(path, .readOnly, options: [.noFollow, .nonBlocking]) } catch {
            throw .systemCall(path: path, name: "open", errno: error.errno.rawValue)
        }
        let fd = file.rawValue
        guard let status = FileStatus(descriptor: fd) else { throw .systemCall(path: path, name: "fstat", errno: errno) }
        return try FileHeader.read(file.rawValue, fileSize: status.sizeInBytes, path: path)
    }
}
