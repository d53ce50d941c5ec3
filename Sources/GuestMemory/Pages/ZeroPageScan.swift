import LinuxSystem

/// Tells whether memory is all zero, 8 bytes at a time.
///
/// Zero pages are not written to snapshots (they become holes), so every page is scanned;
/// this loads 64 bytes as eight unaligned words, ORs them together and stops at the first
/// block that is not zero.
package enum ZeroPageScan {
    /// True if every byte of `bytes` is zero.
    package static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let count = bytes.count
        var index = 0
        while count - index >= 64 {
            // SAFETY: index + 64 <= count, checked by the loop condition.
            let block = unsafe bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                | bytes.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self)
                | bytes.loadUnaligned(fromByteOffset: index + 16, as: UInt64.self)
                | bytes.loadUnaligned(fromByteOffset: index + 24, as: UInt64.self)
                | bytes.loadUnaligned(fromByteOffset: index + 32, as: UInt64.self)
                | bytes.loadUnaligned(fromByteOffset: index + 40, as: UInt64.self)
                | bytes.loadUnaligned(fromByteOffset: index + 48, as: UInt64.self)
                | bytes.loadUnaligned(fromByteOffset: index + 56, as: UInt64.self)
            if block != 0 { return false }
            index += 64
        }
        while count - index >= 8 {
            // SAFETY: index + 8 <= count.
            if unsafe bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) != 0 { return false }
            index += 8
        }
        while index < count {
            // SAFETY: index < count.
            if unsafe bytes[index] != 0 { return false }
            index += 1
        }
        return true
    }

    /// True if the 4 KiB page in `page` is all zero; `page` must be exactly one page.
    package static func isZeroPage(_ page: UnsafeRawBufferPointer) -> Bool {
        precondition(page.count == PageSize.bytes, "a page is \(PageSize.bytes) bytes")
        return unsafe isZero(page)
    }

    /// True if every byte of `bytes` is zero.
    package static func isZero(_ bytes: [UInt8]) -> Bool {
        // SAFETY: the buffer does not escape the closure.
        unsafe bytes.withUnsafeBytes { unsafe isZero($0) }
    }
}
