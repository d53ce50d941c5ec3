import LinuxSystem
import FoundationEssentials
import GuestMemory
import Paging
import SnapshotFormat

/// What a push stored, and what it saved by deduplication.
package struct ObjectSnapshotUploadSummary: Sendable, Equatable {
    /// Chunks with at least one non-zero page.
    package var chunks = 0
    /// Of those, chunks whose contents were already in the bucket (another snapshot's, or an
    /// earlier chunk of this one) and were not uploaded again.
    package var reusedChunks = 0
    /// Bytes of non-zero pages the snapshot holds.
    package var logicalBytes: UInt64 = 0
    /// Bytes this push uploaded into its pack.
    package var uploadedBytes: UInt64 = 0
}

/// Stores a snapshot chain under `s3://BUCKET/NAME`: its non-zero pages, 2 MiB chunk by chunk,
/// content-addressed; chunks the bucket already holds are referenced, new ones go into one pack
/// object written with a multipart upload (8 MiB parts); then the pack's index; then the
/// manifest, last, so a snapshot exists only once everything it names does.
package enum ObjectSnapshotUploader {
    static let partBytes = 8 << 20

    package static func push(
        _ chain: SnapshotChain, to location: ObjectLocation, client: S3Client
    ) throws(ObjectSnapshotError) -> ObjectSnapshotUploadSummary {
        var known = try knownChunks(bucket: location.bucket, client: client)
        let packKey = PackIndex.prefix + UUID().uuidString.lowercased()
        let pack = PackWriter(client: client, location: ObjectLocation(bucket: location.bucket, uncheckedKey: packKey))
        var summary = ObjectSnapshotUploadSummary()
        var regions: [ObjectSnapshotManifest.Region] = []
        var partDigests: [[[UInt8]?]] = []
        let chunkPages = ObjectSnapshotManifest.chunkPages
        let buffer = PageBuffer(pageCount: Int(chunkPages))
        do {
            for region in chain.regions {
                var chunks: [ObjectSnapshotManifest.Chunk?] = []
                var parts: [[UInt8]?] = []
                var first: UInt64 = 0
                while first < region.pageCount {
                    let count = min(chunkPages, region.pageCount - first)
                    defer { first += count }
                    if (first..<first + count).allSatisfy({ chain.isZeroPage(region: region.index, page: PageIndex($0)) }) {
                        chunks.append(nil)
                        parts.append(nil)
                        continue
                    }
                    do { try chain.readPages(of: region.index, from: PageIndex(first), count: Int(count), into: buffer) } catch {
                        throw ObjectSnapshotError.local("cannot read \(chain.path): \(error)")
                    }
                    let (bitmap, stored) = ChunkPayload.compact(buffer, pageCount: Int(count))
                    guard !stored.isEmpty else { chunks.append(nil); parts.append(nil); continue }
                    let hash = ChunkPayload.hash(bitmap: bitmap, stored: stored)
                    summary.chunks += 1
                    summary.logicalBytes += UInt64(stored.count)
                    // The parts depend on the contents alone: a reused chunk gets them from these bytes too.
                    parts.append(ChunkPayload.partDigests(stored: stored))
                    // Reused only if the index describes these bytes as this push would (an index
                    // is the store's word: a wrong one would make a snapshot that never restores).
                    if let existing = known[hash], existing.length == UInt64(stored.count), existing.pages == bitmap.base64 {
                        summary.reusedChunks += 1
                        chunks.append(existing)
                        continue
                    }
                    let offset = try pack.append(stored)
                    let chunk = ObjectSnapshotManifest.Chunk(hash: hash, pack: packKey, offset: offset, length: UInt64(stored.count), pages: bitmap.base64)
                    known[hash] = chunk
                    chunks.append(chunk)
                }
                regions.append(ObjectSnapshotManifest.Region(
                    name: region.name, sizeInBytes: region.sizeInBytes,
                    placements: region.placements.map { [$0.guestAddress.rawValue, $0.sizeInBytes, $0.regionOffset.rawValue] },
                    chunks: chunks))
                partDigests.append(parts)
            }
            summary.uploadedBytes = try pack.finish()
            if summary.uploadedBytes > 0 {
                let entries = regions.flatMap { $0.chunks.compactMap { $0 } }.filter { $0.pack == packKey }
                var seen = Set<String>()
                let index = PackIndex(pack: packKey, chunks: entries.filter { seen.insert($0.hash).inserted }.map {
                    PackIndex.Entry(hash: $0.hash, offset: $0.offset, length: $0.length, pages: $0.pages)
                })
                try client.putObject(ObjectLocation(bucket: location.bucket, uncheckedKey: packKey + ".index"), body: try index.encoded())
            }
            let digests = PartDigests(chunks: partDigests).encoded
            try client.putObject(location.appending("parts"), body: digests)
            let manifest = ObjectSnapshotManifest(
                regions: regions, state: Data(chain.state).base64EncodedString(),
                fingerprint: chain.fingerprint, partDigests: PartDigests.hash(digests))
            try client.putObject(location.appending("manifest"), body: try manifest.encoded())
        } catch let error as ObjectStoreError {
            pack.abandon()
            throw .store(error)
        } catch let error as ObjectSnapshotError {
            pack.abandon()
            throw error
        } catch {
            pack.abandon()
            throw .local("\(error)")
        }
        return summary
    }

    /// Every chunk some pack in the bucket already holds, by content address.
    static func knownChunks(bucket: String, client: S3Client) throws(ObjectSnapshotError) -> [String: ObjectSnapshotManifest.Chunk] {
        var known: [String: ObjectSnapshotManifest.Chunk] = [:]
        do {
            for object in try client.listObjects(bucket: bucket, prefix: PackIndex.prefix) where object.key.hasSuffix(".index") {
                // An unreadable index only costs deduplication; a wrong entry is not reused (see push).
                guard let index = PackIndex.decode(try client.getObject(ObjectLocation(bucket: bucket, uncheckedKey: object.key))) else { continue }
                for entry in index.chunks where ChunkPayload.bitmap(entry.pages) != nil {
                    known[entry.hash] = ObjectSnapshotManifest.Chunk(hash: entry.hash, pack: index.pack, offset: entry.offset, length: entry.length, pages: entry.pages)
                }
            }
        } catch {
            throw .store(error)
        }
        return known
    }
}

/// The pack being written: chunks appended in order, sent as 8 MiB multipart parts; a pack
/// that stays empty is never created.
final class PackWriter {
    let client: S3Client
    let location: ObjectLocation
    private var upload: MultipartUpload?
    private var pending: [UInt8] = []
    private var written: UInt64 = 0
    private var partNumber = 0

    init(client: S3Client, location: ObjectLocation) {
        self.client = client
        self.location = location
    }

    /// Adds `bytes`; returns their offset in the pack.
    func append(_ bytes: [UInt8]) throws(ObjectStoreError) -> UInt64 {
        let offset = written
        pending += bytes
        written += UInt64(bytes.count)
        if pending.count >= ObjectSnapshotUploader.partBytes { try sendPart() }
        return offset
    }

    /// Sends what is left and completes the upload; returns the pack's size.
    func finish() throws(ObjectStoreError) -> UInt64 {
        guard written > 0 else { return 0 }
        if !pending.isEmpty || upload == nil { try sendPart() }
        try upload?.complete()
        return written
    }

    /// A failed push leaves no half-written pack behind.
    func abandon() { upload?.abort() }

    private func sendPart() throws(ObjectStoreError) {
        if upload == nil { upload = try client.startMultipartUpload(location) }
        partNumber += 1
        try upload!.uploadPart(partNumber, body: pending)
        pending.removeAll(keepingCapacity: true)
    }
}
