/// Reads little-endian fields from a received payload, every read bounds-checked.
struct ByteReader {
    let bytes: [UInt8]
    let peer: String
    private(set) var offset = 0

    init(_ bytes: [UInt8], peer: String) {
        self.bytes = bytes
        self.peer = peer
    }

    var remaining: Int { bytes.count - offset }

    mutating func u8(_ field: String) throws(TransportError) -> UInt8 { UInt8(try integer(1, field)) }
    mutating func u16(_ field: String) throws(TransportError) -> UInt16 { UInt16(try integer(2, field)) }
    mutating func u32(_ field: String) throws(TransportError) -> UInt32 { UInt32(try integer(4, field)) }
    mutating func u64(_ field: String) throws(TransportError) -> UInt64 { try integer(8, field) }

    mutating func bytes(_ count: Int, _ field: String) throws(TransportError) -> [UInt8] {
        guard count >= 0, count <= remaining else { throw short(field, count) }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// Every byte must have been read.
    func expectEnd(_ what: String) throws(TransportError) {
        guard remaining == 0 else { throw .malformed(peer: peer, reason: "\(what) has \(remaining) bytes too many") }
    }

    private mutating func integer(_ size: Int, _ field: String) throws(TransportError) -> UInt64 {
        guard size <= remaining else { throw short(field, size) }
        var value: UInt64 = 0
        for index in 0..<size { value |= UInt64(bytes[offset + index]) << (8 * index) }
        offset += size
        return value
    }

    private func short(_ field: String, _ count: Int) -> TransportError {
        .malformed(peer: peer, reason: "\(field) needs \(count) bytes but the message has \(remaining) left")
    }
}

/// Builds a payload of little-endian fields.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    mutating func u16(_ value: UInt16) { integer(value) }
    mutating func u32(_ value: UInt32) { integer(value) }
    mutating func u64(_ value: UInt64) { integer(value) }
    mutating func append(_ more: [UInt8]) { bytes.append(contentsOf: more) }

    private mutating func integer<T: FixedWidthInteger>(_ value: T) {
        for shift in stride(from: 0, to: T.bitWidth, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }
}
