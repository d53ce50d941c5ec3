import Foundation
import GuestMemory

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

    /// The state section's bytes.
    static func state(of path: String) throws -> [UInt8] {
        let bytes = try read(path)
        let offset = Int(u64(bytes, 288))
        return Array(bytes[offset..<offset + Int(u64(bytes, 296))])
    }

    /// Copies `source` to `destination` with its state section replaced (length, CRC and header CRC fixed up).
    static func replaceState(of source: String, with state: [UInt8], writingTo destination: String) throws {
        var bytes = try read(source)
        let offset = Int(u64(bytes, 288))
        bytes = Array(bytes[0..<offset]) + state
        put64(UInt64(state.count), &bytes, 296)
        put32(CRC32C.checksum(state), &bytes, 304)
        resealHeader(&bytes)
        try write(bytes, to: destination)
    }

    /// Copies `source` to `destination` with the state's JSON changed by `edit`.
    static func editState(of source: String, writingTo destination: String, _ edit: (inout [String: Any]) -> Void) throws {
        var object = try JSONSerialization.jsonObject(with: Data(try state(of: source))) as! [String: Any]
        edit(&object)
        try replaceState(of: source, with: Array(try JSONSerialization.data(withJSONObject: object)), writingTo: destination)
    }
}
