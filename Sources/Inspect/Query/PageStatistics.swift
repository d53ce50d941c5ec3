import LinuxSystem
import GuestMemory

/// How a region's pages divide into zero pages, copies of earlier pages, and unique contents.
package struct RegionPageCounts: Sendable, Equatable {
    package var name: String
    package var pages: UInt64 = 0
    package var zero: UInt64 = 0
    /// Non-zero pages whose contents appeared earlier in the image (in any region).
    package var duplicate: UInt64 = 0
    /// Non-zero pages that are the first with their contents.
    package var unique: UInt64 = 0

    package init(name: String) { self.name = name }
}

/// Counts zero, duplicate and unique pages per region. Pages are told apart by a 64-bit hash of
/// their contents (collisions are ignored: about 2^-9 likely for a whole TiB of distinct pages).
package enum PageStatistics {
    package static func count(_ image: MemoryImage) throws(InspectError) -> [RegionPageCounts] {
        let scan = RegionScan()
        var seen = Set<UInt64>()
        var result: [RegionPageCounts] = []
        let pageSize = PageSize.bytes
        for region in image.regions.indices {
            var counts = RegionPageCounts(name: image.regions[region].name)
            counts.pages = image.regions[region].pageCount
            try scan.forEachChunk(of: image, region: region) { (chunk) throws(InspectError) -> Bool in
                switch chunk {
                case .zero(_, let count):
                    counts.zero += (count + PageSize.bytes64 - 1) / PageSize.bytes64
                case .data(_, let bytes):
                    var start = 0
                    while start < bytes.count {
                        let end = min(start + pageSize, bytes.count)
                        // SAFETY: [start, end) lies inside the chunk the scan lends for this call.
                        let page = unsafe UnsafeRawBufferPointer(rebasing: bytes[start..<end])
                        if unsafe ZeroPageScan.isZero(page) {
                            counts.zero += 1
                        } else if seen.insert(unsafe PageHash.hash(page)).inserted {
                            counts.unique += 1
                        } else {
                            counts.duplicate += 1
                        }
                        start = end
                    }
                }
                return true
            }
            result.append(counts)
        }
        return result
    }
}

/// A fast 64-bit hash of a page: four independent multiply-rotate lanes over 8-byte words (so
/// the multiplies overlap), folded and finished with a avalanche step.
package enum PageHash {
    package static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let multiplier: UInt64 = 0x9E37_79B9_7F4A_7C15
        var lanes: (UInt64, UInt64, UInt64, UInt64) = (1, 2, 3, 4)
        let words = bytes.count / 8
        var index = 0
        while index + 4 <= words {
            // SAFETY (the four loads): index + 3 < words, so each is inside `bytes`; unaligned loads are allowed.
            let word0 = unsafe bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)
            lanes.0 = ((lanes.0 ^ word0) &* multiplier).rotated(29)
            let word1 = unsafe bytes.loadUnaligned(fromByteOffset: index * 8 + 8, as: UInt64.self)
            lanes.1 = ((lanes.1 ^ word1) &* multiplier).rotated(29)
            let word2 = unsafe bytes.loadUnaligned(fromByteOffset: index * 8 + 16, as: UInt64.self)
            lanes.2 = ((lanes.2 ^ word2) &* multiplier).rotated(29)
            let word3 = unsafe bytes.loadUnaligned(fromByteOffset: index * 8 + 24, as: UInt64.self)
            lanes.3 = ((lanes.3 ^ word3) &* multiplier).rotated(29)
            index += 4
        }
        var result = lanes.0 ^ lanes.1.rotated(17) ^ lanes.2.rotated(34) ^ lanes.3.rotated(51) ^ UInt64(bytes.count)
        for byte in index * 8..<bytes.count {
            // SAFETY: byte < bytes.count.
            result = (result ^ UInt64(unsafe bytes[byte])) &* multiplier
        }
        result ^= result >> 31
        result &*= 0xBF58_476D_1CE4_E5B9
        result ^= result >> 29
        return result
    }
}

extension UInt64 {
    fileprivate func rotated(_ count: UInt64) -> UInt64 { (self << count) | (self >> (64 - count)) }
}
