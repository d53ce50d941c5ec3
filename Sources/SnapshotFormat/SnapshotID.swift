/// A snapshot's identity: 128 random bits written into its header, so a diff can name the exact
/// parent it was taken against rather than whatever file now has the parent's name.
package struct SnapshotID: Hashable, Sendable, CustomStringConvertible {
    /// The 16 bytes as stored.
    package let bytes: [UInt8]

    /// Version 1 files have no id; their identity is the zero id plus their header CRC.
    package static let none = SnapshotID(bytes: [UInt8](repeating: 0, count: 16))

    package init(bytes: [UInt8]) {
        precondition(bytes.count == 16, "a snapshot id is 16 bytes")
        self.bytes = bytes
    }

    /// A fresh random id (the system generator draws from getrandom(2)).
    package static func random() -> SnapshotID {
        var generator = SystemRandomNumberGenerator()
        return SnapshotID(bytes: (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// 32 lowercase hex digits.
    package var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// What a diff records of its parent, and what a reader compares against the parent it finds:
/// the parent's id and the CRC of the parent's whole header (which covers its tables' CRCs).
package struct SnapshotIdentity: Hashable, Sendable, CustomStringConvertible {
    package let id: SnapshotID
    package let headerCRC: UInt32

    package init(id: SnapshotID, headerCRC: UInt32) {
        self.id = id
        self.headerCRC = headerCRC
    }

    package var description: String { "id \(id), header CRC32C 0x\(String(headerCRC, radix: 16))" }
}
