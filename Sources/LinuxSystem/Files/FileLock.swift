import Glibc

/// An advisory lock (flock(2)) on a lock file, held until this value goes away: processes that
/// share a directory (restores sharing a chunk cache) take turns at work on it.
package final class FileLock {
    private let file: OwnedFileDescriptor

    private init(file: OwnedFileDescriptor) { self.file = file }

    deinit { _ = flock(file.rawValue, LOCK_UN) }

    /// The exclusive lock on `path` (created 0600 if missing), or nil if another holder has it
    /// now or the file cannot be opened: the caller skips the work rather than wait.
    package static func tryExclusive(_ path: String) -> FileLock? {
        // Not through a link: a link planted there would have the lock made wherever it points.
        guard let file = try? OwnedFileDescriptor.open(path, .readWrite, options: [.create, .noFollow], permissions: [.ownerReadWrite]),
              flock(file.rawValue, LOCK_EX | LOCK_NB) == 0
        else { return nil }
        return FileLock(file: file)
    }
}
