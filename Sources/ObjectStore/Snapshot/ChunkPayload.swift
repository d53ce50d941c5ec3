import LinuxSystem
import Crypto
import FoundationEssentials
import GuestMemory

/// One chunk as stored: its non-zero pages back to back, in page order, with a bitmap saying
/// which pages they are. Identical chunks have identical bytes and bitmaps, so the SHA-256 of
/// (bitmap, bytes) is a content address shared by every snapshot holding the same memory.
package enum ChunkPayload {
    /// A chunk's 512-page bitmap.
    package struct Bitmap: Equatable, Sendable {
        package var words: [UInt64] = Array(repeating: 0, count: 8)
        package init() {}
        package mutating func insert(_ page: Int) { words[page / 64] |= 1 << UInt64(page % 64) }
        package func contains(_ page: Int) -> Bool { words[page / 64] & (1 << UInt64(page % 64)) != 0 }
        package var setCount: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }
        package var highestSet: Int? {
            for index in words.indices.reversed() where words[index] != 0 { return index * 64 + 63 - words[index].leadingZeroBitCount }
            return nil
        }
        package var bytes: [UInt8] { words.flatMap { word in (0..<8).map { UInt8(truncatingIfNeeded: word >> (8 * UInt64($0))) } } }
        package var base64: String { Data(bytes).base64EncodedString() }
    }

    /// Decodes a manifest's base64 bitmap.
    package static func bitmap(_ base64: String) -> Bitmap? {
        guard let data = Data(base64Encoded: base64), data.count == 64 else { return nil }
        let bytes = [UInt8](data)
        var bitmap = Bitmap()
        for index in 0..<8 {
            bitmap.words[index] = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[index * 8 + $1]) << (8 * UInt64($1)) }
        }
        return bitmap
    }

    /// The content address: SHA-256 over the bitmap and the stored bytes, in hex.
    package static func hash(bitmap: Bitmap, stored: [UInt8]) -> String {
        var hasher = SHA256()
        hasher.update(data: bitmap.bytes)
        hasher.update(data: stored)
        return hasher.finalize().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Stored bytes per part: a fault fetches and checks the parts holding its pages before the
    /// whole chunk has arrived (16 pages, one ranged GET of 64 KiB).
    package static let partBytes = 64 << 10
    /// Bytes of SHA-256 kept per part: 128 bits, ample against damage and mix-ups.
    package static let partDigestBytes = 16

    /// How many parts `storedBytes` of a chunk make.
    package static func partCount(storedBytes: UInt64) -> Int { Int((storedBytes + UInt64(partBytes) - 1) / UInt64(partBytes)) }

    /// The parts' digests of a chunk's stored bytes, back to back.
    package static func partDigests(stored: [UInt8]) -> [UInt8] {
        var digests: [UInt8] = []
        digests.reserveCapacity(partCount(storedBytes: UInt64(stored.count)) * partDigestBytes)
        var start = 0
        while start < stored.count {
            digests += partDigest(stored[start..<min(start + partBytes, stored.count)])
            start += partBytes
        }
        return digests
    }

    /// The first 16 bytes of the SHA-256 of one part's bytes.
    package static func partDigest(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        Array(SHA256.hash(data: bytes).prefix(partDigestBytes))
    }

    /// Splits the first `pageCount` pages of `pages` (a chunk's pages, zero pages included)
    /// into its bitmap and stored bytes.
    package static func compact(_ pages: PageBuffer, pageCount: Int) -> (bitmap: Bitmap, stored: [UInt8]) {
        var bitmap = Bitmap()
        var stored: [UInt8] = []
        for page in 0..<pageCount where !pages.isZeroPage(page) {
            bitmap.insert(page)
            pages.appendPage(page, to: &stored)
        }
        return (bitmap, stored)
    }
}
