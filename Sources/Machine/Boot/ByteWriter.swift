/// Little-endian field stores into a byte buffer, for building boot structures.
struct ByteWriter {
    var bytes: [UInt8]

    init(count: Int) { bytes = [UInt8](repeating: 0, count: count) }

    mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for i in 0..<MemoryLayout<T>.size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    mutating func put(_ data: some Collection<UInt8>, at offset: Int) {
        bytes.replaceSubrange(offset..<(offset + data.count), with: data)
    }
}

/// Little-endian field loads from a byte buffer that came from outside (a kernel file): bounds-checked.
struct ByteReader {
    let bytes: [UInt8]

    /// The value at `offset`, or nil when it does not fit in the buffer.
    func get<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
        guard offset >= 0, offset <= bytes.count - MemoryLayout<T>.size else { return nil }
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size { value |= T(bytes[offset + i]) << (8 * i) }
        return value
    }
}
