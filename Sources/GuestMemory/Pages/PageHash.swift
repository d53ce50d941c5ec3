/// A fast 64-bit hash of a page: four independent multiply-rotate lanes over 8-byte words (so
/// the multiplies overlap), folded and finished with a avalanche step.
package enum PageHash {
    /// The hash of `bytes`.
    package static func hash(_ bytes: RawSpan) -> UInt64 {
        // SAFETY: the view does not escape the closure.
        unsafe bytes.withUnsafeBytes { unsafe hash($0) }
    }

    private static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
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
