import LinuxSystem
import FoundationEssentials
import GuestMemory
import SnapshotFormat

/// What `s3://BUCKET/NAME/manifest` holds: the snapshot's regions, for every 2 MiB chunk of
/// each where its pages are (a content-addressed chunk inside a pack object) or that it is all
/// zero, and the machine state. JSON, versioned; every count, offset and length is checked
/// before use (docs/OBJECT_STORE.md).
package struct ObjectSnapshotManifest: Codable, Sendable, Equatable {
    package static let currentVersion = 1
    /// Pages per chunk: 2 MiB, the unit of upload, deduplication, ranged GET and cache.
    package static let chunkPages: UInt64 = 512
    static let maximumRegions = 64
    static let maximumRegionBytes: UInt64 = 1 << 40
    static let maximumStateBytes = Int(SnapshotLayout.maximumStateLength + SnapshotLayout.maximumConfigurationLength)

    /// Where one chunk's stored pages are.
    package struct Chunk: Codable, Sendable, Equatable {
        /// SHA-256 (hex) of the stored bytes: the chunk's content address.
        package var hash: String
        /// The pack object (key under the bucket) and the byte range the chunk occupies in it.
        package var pack: String
        package var offset: UInt64
        package var length: UInt64
        /// Which of the chunk's pages are stored (base64 of a 64-byte little-endian bitmap);
        /// the stored pages follow each other in page order, the rest are zero.
        package var pages: String
    }

    package struct Region: Codable, Sendable, Equatable {
        package var name: String
        package var sizeInBytes: UInt64
        package var placements: [[UInt64]]   // [guest address, size, region offset]
        /// One entry per chunk; nil: every page of the chunk is zero.
        package var chunks: [Chunk?]
    }

    package var version = ObjectSnapshotManifest.currentVersion
    package var regions: [Region]
    /// The machine state (the snapshot's state section), base64.
    package var state: String
    /// Ties working sets to this snapshot.
    package var fingerprint: UInt64
    /// The SHA-256 (hex) of `NAME/parts`, the chunks' part digests (`PartDigests`), so a fault can
    /// fetch and check the few pages it needs before its whole chunk arrives. Absent in manifests
    /// written before Engram kept them: faults then wait for whole chunks.
    package var partDigests: String?

    package var shapes: [SnapshotRegionShape] {
        regions.map { region in
            SnapshotRegionShape(name: region.name, sizeInBytes: region.sizeInBytes, placements: region.placements.map {
                GuestPlacement(guestAddress: GuestAddress($0[0]), sizeInBytes: $0[1], regionOffset: RegionOffset($0[2]))
            })
        }
    }

    package var stateBytes: [UInt8] { Data(base64Encoded: state).map { [UInt8]($0) } ?? [] }

    /// The manifest as JSON; a failure to encode is an error, never an empty object in the store.
    package func encoded() throws(ObjectSnapshotError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { return Array(try encoder.encode(self)) } catch { throw .local("cannot encode the snapshot manifest: \(error)") }
    }

    /// Decodes and checks a manifest read from `origin`.
    package static func decode(_ bytes: [UInt8], origin: String) throws(ObjectSnapshotError) -> ObjectSnapshotManifest {
        func bad(_ reason: String) -> ObjectSnapshotError { .damaged(origin, reason) }
        let manifest: ObjectSnapshotManifest
        do { manifest = try JSONDecoder().decode(ObjectSnapshotManifest.self, from: Data(bytes)) } catch {
            throw bad("its manifest does not decode: \(error)")
        }
        guard manifest.version == currentVersion else {
            throw bad("its manifest is version \(manifest.version); this Engram reads version \(currentVersion)")
        }
        guard (1...maximumRegions).contains(manifest.regions.count) else { throw bad("it has \(manifest.regions.count) regions") }
        if let parts = manifest.partDigests, !isChunkHash(parts) {
            throw bad("it names its part digests by \(parts.debugDescription), not a SHA-256")
        }
        guard Data(base64Encoded: manifest.state) != nil, manifest.state.utf8.count <= maximumStateBytes * 2 else {
            throw bad("its machine state is not base64 of at most 16 MiB")
        }
        for region in manifest.regions {
            guard region.sizeInBytes > 0, region.sizeInBytes % 4096 == 0, region.sizeInBytes <= maximumRegionBytes else {
                throw bad("region \(region.name) has \(region.sizeInBytes) bytes")
            }
            let pageCount = region.sizeInBytes / PageSize.bytes64
            guard UInt64(region.chunks.count) == (pageCount + chunkPages - 1) / chunkPages else {
                throw bad("region \(region.name) lists \(region.chunks.count) chunks for \(pageCount) pages")
            }
            for placement in region.placements {
                guard placement.count == 3, placement[1] > 0, placement[2] <= region.sizeInBytes,
                      placement[1] <= region.sizeInBytes - placement[2], placement[0] <= UInt64.max - placement[1] else {
                    throw bad("region \(region.name) is placed outside itself")
                }
            }
            for (index, chunk) in region.chunks.enumerated() {
                guard let chunk else { continue }
                guard let bitmap = ChunkPayload.bitmap(chunk.pages) else { throw bad("chunk \(index) of region \(region.name) has no page bitmap") }
                let stored = UInt64(bitmap.setCount)
                guard stored > 0, chunk.length == stored * 4096, isChunkHash(chunk.hash), chunk.offset <= UInt64.max - chunk.length,
                      !chunk.pack.isEmpty, !chunk.pack.hasPrefix("/") else {
                    throw bad("chunk \(index) of region \(region.name) is described wrongly")
                }
                let pagesInChunk = min(chunkPages, pageCount - UInt64(index) * chunkPages)
                guard bitmap.highestSet.map({ UInt64($0) < pagesInChunk }) ?? false else {
                    throw bad("chunk \(index) of region \(region.name) names pages past the region's end")
                }
            }
        }
        return manifest
    }
}

extension ObjectSnapshotManifest {
    /// A SHA-256 as chunks, packs and part digests are named: 64 lowercase hex digits (what
    /// Engram computes, so anything else would only fail later, chunk by chunk).
    package static func isChunkHash(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}
