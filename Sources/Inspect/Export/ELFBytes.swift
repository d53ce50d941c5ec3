/// A little-endian byte buffer for building ELF structures field by field at fixed offsets,
/// the way the C structs lay them out, without any pointer casts.
struct ELFByteBuilder {
    private(set) var bytes: [UInt8]

    init(count: Int) { bytes = [UInt8](repeating: 0, count: count) }

    mutating func put<Value: FixedWidthInteger>(_ value: Value, at offset: Int) {
        for index in 0..<Value.bitWidth / 8 {
            bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index))
        }
    }

    mutating func put(_ raw: [UInt8], at offset: Int) {
        bytes.replaceSubrange(offset..<offset + raw.count, with: raw)
    }
}

/// Fields of an ELF structure read from bytes already taken from a file: every read is
/// bounds-checked, and a short structure is reported as damage naming the field.
struct ELFFieldReader {
    let bytes: [UInt8]
    /// The file, for messages.
    let path: String
    /// What `bytes` are ("ELF header", "program header 3"), for messages.
    let structure: String

    func value<Value: FixedWidthInteger>(_ type: Value.Type, at offset: Int, field: String) throws(InspectError) -> Value {
        let width = Value.bitWidth / 8
        guard offset >= 0, offset <= bytes.count - width else {
            throw .damaged(path: path, reason: "\(structure) is \(bytes.count) bytes, too short for \(field) at offset \(offset)")
        }
        var result: Value = 0
        for index in 0..<width { result |= Value(bytes[offset + index]) << (8 * index) }
        return result
    }
}
