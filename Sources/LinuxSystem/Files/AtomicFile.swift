import CLinux
import Glibc
import SystemPackage

/// A file that appears at its path whole or not at all, mode 0600 from creation (guest memory
/// holds secrets). Written unnamed (O_TMPFILE) in the destination's directory, so a writer killed
/// half-way leaves nothing; on commit synced, linked under its name (or under a temporary name
/// renamed over the path) and the directory synced so the name itself survives a crash. Where
/// the file system has no O_TMPFILE, written under a private `PATH.tmp-XXXXXX` held flock'd for
/// its life, so the next writer in the directory can tell a dead writer's leftover and remove it.
///
/// The path must name a regular file or nothing: a symbolic link, directory, device, FIFO or
/// socket there is refused untouched, as is a file the caller protects (the VM's own RAM or
/// display file). Every writer of a whole file (snapshots, exports, working sets, handoffs,
/// screenshots, cached chunks) goes through this one type.
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
    /// The file being written; hand its descriptor to writers.
    package let file: OwnedFileDescriptor
    private let protecting: [FileIdentity]
    /// The file's temporary name: nil while it is unnamed (O_TMPFILE, before a replacing commit
    /// links it under one).
    private var temporaryPath: String?
    private var committed = false

    /// Creates the file to be written, once `path` is known to name a regular file or nothing
    /// and none of `protecting`.
    package convenience init(path: String, protecting: [FileIdentity] = []) throws(SystemError) {
        try self.init(path: path, protecting: protecting, allowingUnnamed: true)
    }

    /// `allowingUnnamed: false` forces the named fallback, for tests.
    init(path: String, protecting: [FileIdentity], allowingUnnamed: Bool) throws(SystemError) {
        try Self.checkTarget(path, protecting: protecting)
        self.path = path
        self.protecting = protecting
        Self.removeStaleTemporaryFiles(in: FileSystem.directory(of: path))
        if allowingUnnamed, let unnamed = try Self.createUnnamed(for: path) {
            file = unnamed
            temporaryPath = nil
        } else {
            (file, temporaryPath) = try Self.createNamed(for: path)
        }
    }

    deinit {
        // Before the descriptor closes, so the name goes while its lock is still held.
        if !committed, let temporaryPath { _ = unlink(temporaryPath) }
    }

    /// The temporary file's path, for messages about a write that failed half-way.
    package var temporaryFilePath: String {
        temporaryPath ?? "\(FileSystem.directory(of: path)) (unnamed temporary file for \(FilePath(path).lastComponent?.string ?? path))"
    }

    /// Gives the finished file its final name, as `durability` says. With `replacingExisting`
    /// (the default) rename(2) replaces any regular file there; without it link(2) fails with
    /// EEXIST if the name exists, leaving that file untouched.
    package func commit(_ durability: Durability = .durable, replacingExisting: Bool = true) throws(SystemError) {
        if durability == .durable { try file.sync(subject: temporaryFilePath) }
        if replacingExisting {
            // Writing a snapshot takes a while: what the path names may have changed meanwhile.
            try Self.checkTarget(path, protecting: protecting)
            let source: String
            if let temporaryPath { source = temporaryPath } else { source = try linkUnderTemporaryName() }
            guard rename(source, path) == 0 else { throw .last("rename", on: path) }
        } else if let temporaryPath {
            guard link(temporaryPath, path) == 0 else { throw .last("link", on: path) }
            // The file is in place; a leftover temporary name would only be an extra link to it.
            _ = unlink(temporaryPath)
        } else {
            guard linkDescriptor(to: path) else { throw .last("link", on: path) }
        }
        committed = true
        if durability == .durable { try Self.syncDirectory(containing: path) }
    }

    /// Writes `bytes` as the whole file at `path`.
    package static func write(_ bytes: [UInt8], to path: String, _ durability: Durability = .durable) throws(SystemError) {
        let file = try AtomicFile(path: path)
        try file.file.writeAll(bytes, subject: file.temporaryFilePath)
        try file.commit(durability)
    }

    /// fsync(2) of the directory holding `path`, so a rename into it is durable.
    package static func syncDirectory(containing path: String) throws(SystemError) {
        let name = FileSystem.directory(of: path)
        let fd = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open (directory)", on: name) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .last("fsync (directory)", on: name) }
    }

    // MARK: - The path

    /// Refuses a path a whole-file write must not go to. The refusal is a SystemError (what
    /// every caller already handles) whose call names the reason: "PATH: open (it is a FIFO;
    /// expected a regular file or no file) failed: Invalid argument".
    private static func checkTarget(_ path: String, protecting: [FileIdentity]) throws(SystemError) {
        // C strings end at the first NUL: "/a\0/b" would silently be written as "/a".
        guard !path.utf8.contains(0) else {
            throw refusal(path.split(separator: "\0", omittingEmptySubsequences: false).joined(separator: "\\0"),
                          "the path contains a NUL byte", .invalidArgument)
        }
        // Nothing there (or nothing reachable: creating the file will say why).
        guard let status = FileStatus(path: path, followingLinks: false) else { return }
        switch status.kind {
        case .regular: break
        case .symbolicLink: throw refusal(path, "it is a symbolic link; expected a regular file or no file", .tooManySymbolicLinkLevels)
        case .directory: throw refusal(path, "it is a directory; expected a regular file or no file", .isDirectory)
        case .socket: throw refusal(path, "it is a socket; expected a regular file or no file", .invalidArgument)
        case .fifo: throw refusal(path, "it is a FIFO; expected a regular file or no file", .invalidArgument)
        case .characterDevice: throw refusal(path, "it is a character device; expected a regular file or no file", .invalidArgument)
        case .blockDevice: throw refusal(path, "it is a block device; expected a regular file or no file", .invalidArgument)
        case .unknown: throw refusal(path, "it is not a regular file; expected a regular file or no file", .invalidArgument)
        }
        guard !protecting.contains(status.identity) else {
            throw refusal(path, "it is this VM's own file: RAM or display", .resourceBusy)
        }
    }

    private static func refusal(_ path: String, _ reason: String, _ errno: Errno) -> SystemError {
        SystemError(refusing: path, because: reason, errno)
    }

    // MARK: - Creation

    /// O_TMPFILE, which Swift's Glibc module does not import (it needs _GNU_SOURCE).
    private static let unnamedFileFlag = __O_TMPFILE | O_DIRECTORY

    /// An unnamed file in `path`'s directory, locked; nil where the kernel or file system cannot
    /// make one, or /proc (through which it is named) is missing.
    private static func createUnnamed(for path: String) throws(SystemError) -> OwnedFileDescriptor? {
        guard access("/proc/self/fd", X_OK) == 0 else { return nil }
        let fd = open(FileSystem.directory(of: path), unnamedFileFlag | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            // EISDIR: a kernel before 3.11 saw only O_DIRECTORY. EOPNOTSUPP, EINVAL: the file system.
            if errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL { return nil }
            throw .last("open (unnamed temporary file)", on: path)
        }
        let file = OwnedFileDescriptor(taking: fd)
        // The lock goes with the file to the temporary name a replacing commit links: a scan then
        // sees a live writer, not a leftover.
        guard lock(fd) else { throw .last("flock", on: path) }
        return file
    }

    /// A new `PATH.tmp-XXXXXX` (mkostemp: mode 0600, a name no other writer can predict),
    /// locked for its whole life.
    private static func createNamed(for path: String) throws(SystemError) -> (OwnedFileDescriptor, String) {
        for _ in 0..<8 {
            var template = Array((path + ".tmp-XXXXXX").utf8CString)
            // SAFETY: mkostemp rewrites the XXXXXX in place inside the NUL-terminated local array.
            let fd = unsafe template.withUnsafeMutableBufferPointer { unsafe clinux_mkostemp($0.baseAddress!, O_CLOEXEC) }
            guard fd >= 0 else { throw .last("open", on: path + ".tmp-XXXXXX") }
            let file = OwnedFileDescriptor(taking: fd)
            let name = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard lock(fd) else {
                _ = unlink(name)
                throw .last("flock", on: name)
            }
            // A scan between mkostemp and the lock took the file for a leftover and removed it.
            if let status = FileStatus(path: name, followingLinks: false), status.identity == FileIdentity(descriptor: fd) {
                return (file, name)
            }
        }
        throw SystemError("open", on: path + ".tmp-XXXXXX", .fileExists)
    }

    /// flock(LOCK_EX), waiting out signals.
    private static func lock(_ fd: CInt) -> Bool {
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { return false }
        }
        return true
    }

    /// Links the unnamed file at `name` (EEXIST if something is there).
    private func linkDescriptor(to name: String) -> Bool {
        linkat(AT_FDCWD, "/proc/self/fd/\(file.rawValue)", AT_FDCWD, name, AT_SYMLINK_FOLLOW) == 0
    }

    /// Links the unnamed file at a fresh `PATH.tmp-XXXXXX`, to be renamed over the path.
    private func linkUnderTemporaryName() throws(SystemError) -> String {
        for _ in 0..<100 {
            let suffix = (0..<6).map { _ in Self.temporaryNameCharacters.randomElement()! }
            let name = path + ".tmp-" + String(decoding: suffix, as: UTF8.self)
            if linkDescriptor(to: name) {
                temporaryPath = name
                return name
            }
            guard errno == EEXIST else { throw .last("link", on: name) }
        }
        throw SystemError("link", on: path + ".tmp-XXXXXX", .fileExists)
    }

    // MARK: - Leftovers

    /// mkostemp's alphabet for the XXXXXX.
    private static let temporaryNameCharacters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// True for `<anything>.tmp-XXXXXX`, the temporary names this type gives.
    static func isTemporaryName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count >= 11 else { return false }
        return bytes[(bytes.count - 11)..<(bytes.count - 6)].elementsEqual(".tmp-".utf8)
            && bytes.suffix(6).allSatisfy(temporaryNameCharacters.contains)
    }

    /// Removes temporary files in `directory` left by killed writers: a live writer holds its
    /// file's flock, so a file whose lock is granted has none. Only this user's owner-only regular
    /// files, as this type creates them.
    private static func removeStaleTemporaryFiles(in directory: String) {
        for name in FileSystem.entries(of: directory) ?? [] where isTemporaryName(name) {
            let path = directory + "/" + name
            // O_NONBLOCK: a FIFO by that name must not stall the open.
            let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var info = stat()
            // SAFETY: `info` is a local the call fills.
            guard unsafe fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(),
                  info.st_mode & 0o077 == 0, flock(fd, LOCK_EX | LOCK_NB) == 0
            else { continue }
            // Unlinked before the descriptor closes, under the lock: a writer that locks its new
            // file after this sees its name gone and makes another.
            _ = unlink(path)
        }
    }
}
