/// A fixed-size byte buffer with little-endian field accessors, for headers and tables.
///
/// Offsets are constants of the format, so an out-of-range offset is a programming error
/// and traps (array bounds checks); values from the file are checked by `BoundsCheck`.
package struct LittleEndianBuffer: Sendable {
    /// The buffer's bytes, as they are on disk.
    package var bytes: [UInt8]

    /// `count` zero bytes.
    package init(count: Int) { bytes = [UInt8](repeating: 0, count: count) }

    /// Wraps bytes read from a file.
    package init(bytes: [UInt8]) { self.bytes = bytes }

    /// The little-endian u32 at `offset`.
    package func u32(at offset: Int) -> UInt32 {
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(bytes[offset + i]) << (8 * UInt32(i)) }
        return value
    }

    /// The little-endian u64 at `offset`.
    package func u64(at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        return value
    }

    /// A copy of `count` bytes at `offset`.
    package func slice(at offset: Int, count: Int) -> [UInt8] { Array(bytes[offset..<offset + count]) }

    /// Stores `value` little-endian at `offset`.
    package mutating func setU32(_ value: UInt32, at offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    }

    /// Stores `value` little-endian at `offset`.
    package mutating func setU64(_ value: UInt64, at offset: Int) {
        for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    /// Copies `value` to `offset`.
    package mutating func setBytes(_ value: [UInt8], at offset: Int) {
        bytes.replaceSubrange(offset..<offset + value.count, with: value)
    }

    /// A zero-padded text field of `count` bytes read as UTF-8 up to the first NUL; nil if the
    /// text is not valid UTF-8 or anything but zeros follows the first NUL.
    package func paddedText(at offset: Int, count: Int) -> String? {
        let field = bytes[offset..<offset + count]
        let end = field.firstIndex(of: 0) ?? field.endIndex
        guard field[end...].allSatisfy({ $0 == 0 }) else { return nil }
        return String(validating: field[field.startIndex..<end], as: UTF8.self)
    }
}
