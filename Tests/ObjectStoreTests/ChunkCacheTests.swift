import Foundation
@testable import ObjectStore
import Testing

/// The chunk cache's directory may hold what others put there: its trim counts and removes only
/// chunks, and no size there can trap it.
@Suite struct ChunkCacheTests {
    @Test func filesSomeoneElsePutInTheCacheCannotTrapItsTrim() throws {
        let directory = "/dev/shm/engram-chunk-cache-test-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cache = try ChunkCache(directory: directory, maximumBytes: 1 << 20)
        let chunks = ["a", "b", "c"].map { String(repeating: $0, count: 64) }
        let strangers = ["not-a-chunk", String(repeating: "A", count: 64)]
        for name in chunks + strangers {
            let path = directory + "/" + name
            FileManager.default.createFile(atPath: path, contents: nil)
            try FileHandle(forWritingAtPath: path)!.truncate(atOffset: UInt64(Int64.max))  // sparse
        }
        #expect(cache.trim() != nil, "the trim ran to its end")
        for name in chunks { #expect(!FileManager.default.fileExists(atPath: directory + "/" + name), "\(name) was over the bound") }
        for name in strangers { #expect(FileManager.default.fileExists(atPath: directory + "/" + name), "\(name) is not a chunk: left alone") }
    }

    @Test func chunksAreNamedByLowercaseSHA256() {
        #expect(ObjectSnapshotManifest.isChunkHash(String(repeating: "0f", count: 32)))
        #expect(!ObjectSnapshotManifest.isChunkHash(String(repeating: "0F", count: 32)), "uppercase: what Engram never computes")
        #expect(!ObjectSnapshotManifest.isChunkHash(String(repeating: "0f", count: 31)))
        #expect(!ObjectSnapshotManifest.isChunkHash(String(repeating: "０", count: 64)), "fullwidth digits")
    }

    /// A directory others can write is not used, and a chunk is read only from a regular file of
    /// its own length, never through a link; the lock is never made through a link either.
    @Test func theCacheTrustsOnlyWhatItsUserAloneCanWrite() throws {
        let base = "/dev/shm/engram-chunk-cache-trust-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let open = base + "/open"
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        #expect(throws: ObjectSnapshotError.self) { _ = try ChunkCache(directory: open, maximumBytes: 1 << 20) }

        let directory = base + "/cache"
        let cache = try ChunkCache(directory: directory, maximumBytes: 1 << 20)
        var bitmap = ChunkPayload.Bitmap()
        bitmap.insert(0)
        let page = [UInt8](repeating: 3, count: 4096)
        let hash = ChunkPayload.hash(bitmap: bitmap, stored: page)
        cache.put(hash, bytes: page)
        #expect(cache.get(hash, bitmap: bitmap) == page)
        // The same bytes behind a link, or with a byte more: not read.
        let elsewhere = base + "/elsewhere"
        FileManager.default.createFile(atPath: elsewhere, contents: Data(page))
        try FileManager.default.removeItem(atPath: directory + "/" + hash)
        try FileManager.default.createSymbolicLink(atPath: directory + "/" + hash, withDestinationPath: elsewhere)
        #expect(cache.get(hash, bitmap: bitmap) == nil)
        try FileManager.default.removeItem(atPath: directory + "/" + hash)
        FileManager.default.createFile(atPath: directory + "/" + hash, contents: Data(page + [0]))
        #expect(cache.get(hash, bitmap: bitmap) == nil)
        // A link where the lock goes: the trim does not run, and nothing is made where it points.
        try? FileManager.default.removeItem(atPath: directory + "/.lock")
        try FileManager.default.createSymbolicLink(atPath: directory + "/.lock", withDestinationPath: base + "/planted")
        #expect(cache.trim() == nil)
        #expect(!FileManager.default.fileExists(atPath: base + "/planted"))
    }
}
