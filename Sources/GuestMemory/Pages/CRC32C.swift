import CLinux

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): with the SSE4.2 crc32 instruction
/// where the CPU has it (about 4× faster; it is on every snapshot write, copy restore and lazy
/// fault), else with slicing-by-8 tables in plain Swift.
///
/// Checks snapshot pages and headers. `update` allocates nothing. The value passed in and returned is the finished CRC, so
/// `update(update(0, a), b) == checksum(a + b)`.
package enum CRC32C {
    /// The reflected Castagnoli polynomial.
    package static let polynomial: UInt32 = 0x82F6_3B78

    /// 8 tables of 256 entries: table k gives the CRC of a byte followed by k zero bytes.
    private static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for n in 0..<256 {
            var crc = UInt32(n)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ polynomial : crc >> 1 }
            tables[n] = crc
        }
        for k in 1..<8 {
            for n in 0..<256 {
                let previous = tables[(k - 1) * 256 + n]
                tables[k * 256 + n] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    /// True when the crc32 instruction is used.
    package static let usesHardware = clinux_cpu_has_sse42() != 0

    /// Continues `crc` (0 to start) over `bytes` and returns the finished CRC.
    package static func update(_ crc: UInt32, bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard usesHardware, let base = bytes.baseAddress else { return unsafe tableUpdate(crc, bytes: bytes) }
        // SAFETY: the C loop reads exactly `bytes.count` bytes from `base`, which the caller keeps alive.
        let state = unsafe clinux_crc32c_sse42(~crc, base, bytes.count)
        return ~state
    }

    /// The table-driven CRC (the fallback, and the reference the tests compare the hardware path with).
    package static func tableUpdate(_ crc: UInt32, bytes: UnsafeRawBufferPointer) -> UInt32 {
        // SAFETY: the table pointer stays inside the closure; every index is masked to 0..<2048.
        unsafe tables.withUnsafeBufferPointer { table in
            var c = ~crc
            var index = 0
            let count = bytes.count
            while count - index >= 8 {
                // SAFETY: index + 8 <= count, checked by the loop condition.
                let word = unsafe bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self).littleEndian ^ UInt64(c)
                let a = unsafe table[7 * 256 + Int(word & 0xFF)] ^ table[6 * 256 + Int((word >> 8) & 0xFF)]
                let b = unsafe table[5 * 256 + Int((word >> 16) & 0xFF)] ^ table[4 * 256 + Int((word >> 24) & 0xFF)]
                let d = unsafe table[3 * 256 + Int((word >> 32) & 0xFF)] ^ table[2 * 256 + Int((word >> 40) & 0xFF)]
                let e = unsafe table[1 * 256 + Int((word >> 48) & 0xFF)] ^ table[Int(word >> 56)]
                c = a ^ b ^ d ^ e
                index += 8
            }
            while index < count {
                // SAFETY: index < count.
                let byte = unsafe bytes[index]
                c = unsafe table[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8)
                index += 1
            }
            return ~c
        }
    }

    /// The CRC32C of `bytes`.
    package static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 { unsafe update(0, bytes: bytes) }

    /// Continues `crc` over `count` zero bytes without reading them: the register times
    /// x^(8·count) modulo the polynomial, in O(log count) steps. A long run of zeros (the CRC
    /// entries of pages a sparse snapshot does not store) then costs what a short one does.
    package static func appendingZeros(_ crc: UInt32, count: UInt64) -> UInt32 {
        var register = ~crc
        var exponent = count
        var power = 0
        // 8·count = Σ 2^(k+3) over the bits k of count: multiply by x^(2^(k+3)) for each.
        while exponent != 0 {
            if exponent & 1 != 0 { register = multiply(register, powersOfX[power + 3]) }
            exponent >>= 1
            power += 1
        }
        return ~register
    }

    /// x^(2^k) modulo the polynomial for k in 0..<67, reflected (bit 31 is the x^0 coefficient).
    private static let powersOfX: [UInt32] = {
        var powers: [UInt32] = [0x4000_0000]  // x^1
        for k in 1..<67 { powers.append(multiply(powers[k - 1], powers[k - 1])) }
        return powers
    }()

    /// a·b modulo the polynomial, both reflected: each set coefficient of `a`, from x^0 up, adds
    /// `b` times that power of x (multiplying by x is a right shift, reduced when x^31 overflows).
    private static func multiply(_ a: UInt32, _ b: UInt32) -> UInt32 {
        var product: UInt32 = 0
        var remaining = a
        var shifted = b
        while remaining != 0 {
            if remaining & 0x8000_0000 != 0 { product ^= shifted }
            remaining <<= 1
            shifted = shifted & 1 != 0 ? (shifted >> 1) ^ polynomial : shifted >> 1
        }
        return product
    }

    /// The CRC32C of `bytes`.
    package static func checksum(_ bytes: [UInt8]) -> UInt32 {
        // SAFETY: the buffer does not escape the closure.
        unsafe bytes.withUnsafeBytes { unsafe update(0, bytes: $0) }
    }

    /// Continues `crc` over `bytes`.
    package static func update(_ crc: UInt32, bytes: [UInt8]) -> UInt32 {
        // SAFETY: the buffer does not escape the closure.
        unsafe bytes.withUnsafeBytes { unsafe update(crc, bytes: $0) }
    }
}
