import Crypto
import LinuxSystem

/// The digests of every chunk's 64 KiB parts, kept beside the manifest as `NAME/parts` rather than
/// in it, so the manifest a restore reads before the guest runs stays small: "EPD1", then for each
/// region and each of its chunks that holds data, in the manifest's order, 16 bytes (the start of
/// the SHA-256) per 64 KiB of the chunk's stored bytes. The manifest names the object's SHA-256,
/// so a restore checks the object whole before it trusts any digest in it.
package struct PartDigests: Sendable {
    static let magic: [UInt8] = Array("EPD1".utf8)
    private let bytes: [UInt8]
    /// Where each chunk's digests begin in `bytes`; nil for an all-zero chunk.
    private let offsets: [[Int?]]

    /// The digests of chunks given region by region, chunk by chunk (nil: all zero).
    package init(chunks: [[[UInt8]?]]) {
        var bytes = Self.magic
        var offsets: [[Int?]] = []
        for region in chunks {
            offsets.append(region.map { digests in
                guard let digests else { return nil }
                defer { bytes += digests }
                return bytes.count
            })
        }
        self.bytes = bytes
        self.offsets = offsets
    }

    /// The object's bytes.
    package var encoded: [UInt8] { bytes }

    /// The object's SHA-256 in hex, as the manifest names it.
    package static func hash(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Decodes `NAME/parts` for `manifest`; nil unless it is exactly the object the manifest names.
    package static func decode(_ bytes: [UInt8], for manifest: ObjectSnapshotManifest) -> PartDigests? {
        guard let expected = manifest.partDigests, hash(bytes) == expected, bytes.starts(with: magic) else { return nil }
        var offsets: [[Int?]] = []
        var offset = magic.count
        for region in manifest.regions {
            offsets.append(region.chunks.map { chunk in
                guard let chunk else { return nil }
                defer { offset += ChunkPayload.partCount(storedBytes: chunk.length) * ChunkPayload.partDigestBytes }
                return offset
            })
        }
        guard offset == bytes.count else { return nil }
        return PartDigests(bytes: bytes, offsets: offsets)
    }

    private init(bytes: [UInt8], offsets: [[Int?]]) {
        self.bytes = bytes
        self.offsets = offsets
    }

    /// The 16-byte digest of part `part` of chunk `chunk` of region `region`; nil if it has none.
    package func digest(region: Int, chunk: Int, part: Int) -> ArraySlice<UInt8>? {
        guard region < offsets.count, chunk < offsets[region].count, let start = offsets[region][chunk] else { return nil }
        let from = start + part * ChunkPayload.partDigestBytes
        guard from + ChunkPayload.partDigestBytes <= bytes.count else { return nil }
        return bytes[from..<from + ChunkPayload.partDigestBytes]
    }
}
