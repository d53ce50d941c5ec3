import Crypto
import FoundationEssentials
import Glibc
import LinuxSystem
import Synchronization

/// Chunks fetched from the object store, kept on local disk and shared by every restore on this
/// host: one file per content address (so two restores of snapshots that share a chunk fetch it
/// once), written under a temporary name and renamed (a reader never sees half a chunk), mode
/// 0600, checked against its address on every read (a damaged file is dropped and fetched again).
/// Bounded: past `maximumBytes`, the least recently used files go, under an flock so concurrent
/// restores do not evict in each other's way.
package final class ChunkCache: Sendable {
    package let directory: String
    package let maximumBytes: UInt64
    /// What this cache knows of the directory's size since its last scan.
    private let tally = Locked(Tally())
    /// Chunks go to disk past the page cache: a later restore reads them, this one never does.
    private let writer = DirectWriter(stagingBytes: Int(ObjectSnapshotManifest.chunkPages) * PageSize.bytes)

    /// The directory's size found by the last scan plus what this process has written since. A
    /// scan stats every file, so it runs only when that sum passes the bound or every eighth of
    /// the bound written (other restores on the host write here too); scanning after every put
    /// made a cold 512 MiB restore spend a core-second on directory listings.
    private struct Tally {
        var knownBytes: UInt64?
        var writtenSinceScan: UInt64 = 0
    }

    package init(directory: String, maximumBytes: UInt64) throws(ObjectSnapshotError) {
        self.directory = directory
        self.maximumBytes = maximumBytes
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .local("cannot create the chunk cache \(directory): \(error)")
        }
        // Chunks are read from here into guests (checked, but read first): a directory another
        // user can write would let them place files (or links) the restore opens.
        guard let status = FileStatus(path: directory), status.kind == .directory, status.owner == geteuid(), status.permissions & 0o022 == 0 else {
            throw .local("the chunk cache \(directory) must be a directory of this user's that no one else can write (mode 0700)")
        }
    }

    /// The default place: $XDG_CACHE_HOME/engram/chunks, or ~/.cache/engram/chunks.
    package static var defaultDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_CACHE_HOME"] ?? ((environment["HOME"] ?? "/root") + "/.cache")
        return base + "/engram/chunks"
    }

    private func path(_ hash: String) -> String { directory + "/" + hash }

    /// The stored bytes of chunk `hash`, if cached and intact.
    package func get(_ hash: String, bitmap: ChunkPayload.Bitmap) -> [UInt8]? {
        // Only a regular file of the chunk's own length, never through a link: a file of any
        // other size is not this chunk, and is not read whole to find out.
        let length = bitmap.setCount * PageSize.bytes
        guard let file = try? OwnedFileDescriptor.open(path(hash), .readOnly, options: [.noFollow, .nonBlocking]),
              FileStatus(descriptor: file.rawValue)?.kind == .regular,
              let bytes = try? file.readWholeFile(limit: length, subject: path(hash)), bytes.count == length
        else { return nil }
        guard ChunkPayload.hash(bitmap: bitmap, stored: bytes) == hash else {
            try? FileManager.default.removeItem(atPath: path(hash))
            return nil
        }
        // Recently used: eviction goes by modification time.
        FileSystem.touch(path(hash))
        return bytes
    }

    /// Whether chunk `hash` has a file here (not yet checked: `get` checks it).
    package func contains(_ hash: String) -> Bool { FileStatus(path: path(hash)) != nil }

    /// Keeps `bytes` as chunk `hash`, then trims the cache to its bound.
    package func put(_ hash: String, bytes: [UInt8]) {
        // A cache: a crash may lose a chunk, never leave half of one (reads re-check the hash).
        guard (try? write(bytes, to: path(hash))) != nil else { return }
        let scans = tally.withLock { tally -> Bool in
            tally.writtenSinceScan += UInt64(bytes.count)
            guard let known = tally.knownBytes else { return true }
            tally.knownBytes = known + UInt64(bytes.count)
            return known + UInt64(bytes.count) > maximumBytes || tally.writtenSinceScan >= maximumBytes / 8
        }
        if scans, let total = trim() {
            tally.withLock { $0 = Tally(knownBytes: total) }
        }
    }

    private func write(_ bytes: [UInt8], to path: String) throws(SystemError) {
        let file = try AtomicFile(path: path)
        try writer.write(bytes, to: file.file.rawValue, subject: file.temporaryFilePath)
        try file.commit(.renameOnly)
    }

    /// Removes least recently used chunks until the cache fits `maximumBytes`; the bytes left, or
    /// nil when another process is trimming or the directory cannot be listed.
    @discardableResult
    func trim() -> UInt64? {
        guard let lock = FileLock.tryExclusive(directory + "/.lock") else { return nil }  // someone else is trimming
        defer { withExtendedLifetime(lock) {} }
        let manager = FileManager.default
        guard let names = try? manager.contentsOfDirectory(atPath: directory) else { return nil }
        var entries: [(path: String, size: UInt64, used: Date)] = []
        var total: UInt128 = 0  // a directory of sparse files of 2^63 bytes each still sums
        // Only chunks (regular files named by a SHA-256) count, and are removed: files someone
        // else put here are left alone.
        for name in names where ObjectSnapshotManifest.isChunkHash(name) {
            let file = directory + "/" + name
            guard let attributes = try? manager.attributesOfItem(atPath: file), attributes[.type] as? FileAttributeType == .typeRegular else { continue }
            let size = (attributes[.size] as? UInt64) ?? UInt64(max(0, attributes[.size] as? Int ?? 0))
            entries.append((file, size, attributes[.modificationDate] as? Date ?? .distantPast))
            total += UInt128(size)
        }
        guard total > UInt128(maximumBytes) else { return UInt64(clamping: total) }
        for entry in entries.sorted(by: { $0.used < $1.used }) where total > UInt128(maximumBytes) {
            try? manager.removeItem(atPath: entry.path)
            total -= UInt128(entry.size)
        }
        return UInt64(clamping: total)
    }
}
