import Foundation
import GuestMemory
import SnapshotFormat

/// Edits a snapshot file the way a damaged or foreign file would look, keeping (or not) its CRCs valid.
enum SnapshotSurgery {
    static func read(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func write(_ bytes: [UInt8], to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) } }
    static func u64(_ bytes: [UInt8], _ offset: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) } }

    static func put32(_ value: UInt32, _ bytes: inout [UInt8], _ offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    }

    static func put64(_ value: UInt64, _ bytes: inout [UInt8], _ offset: Int) {
        for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    /// Recomputes the header CRC (docs/FORMAT.md: last 4 bytes of the header).
    static func resealHeader(_ bytes: inout [UInt8]) {
        let headerSize = Int(u32(bytes, 16))
        put32(CRC32C.checksum(Array(bytes[0..<headerSize - 4])), &bytes, headerSize - 4)
    }

    /// Copies `source` to `destination` with section `name`'s JSON changed by `edit` (and its
    /// version set to `version` if given): the container is rebuilt and written back to its area
    /// (the configuration area for `machine`, else the state area), with the area's length and
    /// CRC and the header CRC fixed up, so only the section's content is wrong.
    static func editSection(
        _ name: String, of source: String, writingTo destination: String, version: UInt32? = nil,
        _ edit: (inout [String: Any]) -> Void = { _ in }
    ) throws {
        let reader = try SnapshotReader(path: source)
        let inConfiguration = reader.configuration[name] != nil
        let container = inConfiguration ? reader.configuration : reader.stateSections
        let sections = try container.sections.map { section -> StateSection in
            guard section.name == name else { return section }
            var object = try JSONSerialization.jsonObject(with: Data(section.payload)) as! [String: Any]
            edit(&object)
            return StateSection(name: name, version: version ?? section.version,
                                payload: Array(try JSONSerialization.data(withJSONObject: object)))
        }
        let encoded = StateSections(sections).encoded()
        var bytes = try read(source)
        if inConfiguration {
            let offset = Int(u64(bytes, 376))
            bytes.replaceSubrange(offset..<offset + Int(u64(bytes, 384)), with: encoded)
            put64(UInt64(encoded.count), &bytes, 384)
            put32(CRC32C.checksum(encoded), &bytes, 392)
            // The page areas start on 2 MiB boundaries: keep them where they were.
            let shift = encoded.count - Int(reader.header.configurationLength)
            if shift > 0 { bytes.removeSubrange(offset + encoded.count..<offset + encoded.count + shift) } else {
                bytes.insert(contentsOf: [UInt8](repeating: 0, count: -shift), at: offset + encoded.count)
            }
        } else {
            let offset = Int(u64(bytes, 288))
            bytes = Array(bytes[0..<offset]) + encoded
            put64(UInt64(encoded.count), &bytes, 296)
            put32(CRC32C.checksum(encoded), &bytes, 304)
        }
        resealHeader(&bytes)
        try write(bytes, to: destination)
    }
}
