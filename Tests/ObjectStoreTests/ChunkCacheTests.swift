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
}
