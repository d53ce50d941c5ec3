import CZlib

/// The CRC-32 of PNG chunks (ISO 3309, the one zlib computes), by zlib's `crc32`.
package enum CRC32 {
    /// Continues `crc` (0 to start) over `bytes`.
    package static func update(_ crc: UInt32, _ bytes: ArraySlice<UInt8>) -> UInt32 {
        unsafe bytes.withUnsafeBytes { buffer in
            // SAFETY: crc32 reads exactly buffer.count bytes from the array's storage.
            UInt32(unsafe crc32(UInt(crc), buffer.baseAddress?.assumingMemoryBound(to: Bytef.self), UInt32(buffer.count)))
        }
    }

    package static func checksum(_ bytes: [UInt8]) -> UInt32 { update(0, bytes[...]) }
}
