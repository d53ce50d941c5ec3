import CLinux
import Glibc
import SystemPackage

/// A file that appears at its path whole or not at all: written under a private temporary name
/// in the same directory (`PATH.tmp-XXXXXX`, mode 0600 from creation: guest memory holds
/// secrets), then synced and renamed over the path, and the directory synced so the rename
/// itself survives a crash. Dropped without `commit`, the temporary file is removed. Every
/// writer of a whole file (snapshots, exports, working sets, handoffs, screenshots, cached
/// chunks) goes through this one type.
package final class AtomicFile {
    /// How hard `commit` works to make the file survive a crash.
    package enum Durability: Sendable {
        /// fsync the file, rename, fsync the directory.
        case durable
        /// rename only: for files read back at once on this host (a live update's handoff),
        /// whose contents would not outlive a host crash anyway.
        case renameOnly
    }

    /// The final path.
    package let path: String
    /// The temporary file being written; hand its descriptor to writers.
    package let file: OwnedFileDescriptor
    private let temporaryPath: String
    private var committed = false

    /// Creates the temporary file beside `path`.
    package init(path: String) throws(SystemCallError) {
        self.path = path
        // mkostemp creates the file with mode 0600 and a name no other writer can predict.
        var template = Array((path + ".tmp-XXXXXX").utf8CString)
        // SAFETY: mkostemp rewrites the XXXXXX in place inside the NUL-terminated local array.
        let fd = unsafe template.withUnsafeMutableBufferPointer { unsafe clinux_mkostemp($0.baseAddress!, O_CLOEXEC) }
        guard fd >= 0 else { throw .last("open", on: path + ".tmp-XXXXXX") }
        file = OwnedFileDescriptor(taking: fd)
        temporaryPath = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        if !committed { _ = unlink(temporaryPath) }
    }

    /// The temporary file's path, for messages about a write that failed half-way.
    package var temporaryFilePath: String { temporaryPath }

    /// Gives the finished file its final name, as `durability` says. With `replacingExisting`
    /// (the default) rename(2) replaces any file there; without it link(2) fails with EEXIST
    /// if the name exists, leaving that file untouched.
    package func commit(_ durability: Durability = .durable, replacingExisting: Bool = true) throws(SystemCallError) {
        if durability == .durable { try file.sync(subject: temporaryPath) }
        if replacingExisting {
            guard rename(temporaryPath, path) == 0 else { throw .last("rename", on: path) }
        } else {
            guard link(temporaryPath, path) == 0 else { throw .last("link", on: path) }
            // The file is in place; a leftover temporary name would only be an extra link to it.
            _ = unlink(temporaryPath)
        }
        committed = true
        if durability == .durable { try Self.syncDirectory(containing: path) }
    }

    /// Writes `bytes` as the whole file at `path`.
    package static func write(_ bytes: [UInt8], to path: String, _ durability: Durability = .durable) throws(SystemCallError) {
        let file = try AtomicFile(path: path)
        try file.file.writeAll(bytes, subject: file.temporaryPath)
        try file.commit(durability)
    }

    /// fsync(2) of the directory holding `path`, so a rename into it is durable.
    package static func syncDirectory(containing path: String) throws(SystemCallError) {
        let directory = FilePath(path).removingLastComponent()
        let name = directory.isEmpty ? "." : directory.string
        let fd = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open (directory)", on: name) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .last("fsync (directory)", on: name) }
    }
}
