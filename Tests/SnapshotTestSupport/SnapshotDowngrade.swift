import Glibc
import GuestMemory
import LinuxSystem
import SnapshotFormat

/// Makes a version 1 file out of a version 2 one, so tests can check version 1 files still read
/// and restore without keeping binary fixtures.
package enum SnapshotDowngrade {
    /// Rewrites the snapshot at `path` as version 1 wrote it: the 320-byte fixed header with the
    /// region table at 320, no ids, table CRCs or configuration, and `state` (version 1's JSON)
    /// as the whole state section, the file ending right after it.
    package static func toVersion1(_ path: String, state: [UInt8]) throws {
        let header = try SnapshotReader(path: path).header
        let size = SnapshotLayout.headerSize(regionCount: header.regions.count, version: 1)
        var buffer = LittleEndianBuffer(count: size)
        buffer.setBytes(SnapshotLayout.magic, at: 0)
        buffer.setU32(1, at: 8)
        buffer.setU32(SnapshotLayout.endiannessMarker, at: 12)
        buffer.setU32(UInt32(size), at: 16)
        buffer.setU32(header.kind.rawValue, at: 20)
        buffer.setU32(4096, at: 24)
        buffer.setU32(UInt32(header.regions.count), at: 28)
        buffer.setBytes(Array(header.parentFileName.utf8), at: 32)
        buffer.setU64(header.stateOffset, at: 288)
        buffer.setU64(UInt64(state.count), at: 296)
        buffer.setU32(state.isEmpty ? 0 : CRC32C.checksum(state), at: 304)
        buffer.setU64(header.creationTime, at: 312)
        for (i, region) in header.regions.enumerated() {
            var entry = region
            entry.bitmapCRC = 0
            entry.crcTableCRC = 0
            entry.encode(into: &buffer, at: 320 + 224 * i)
        }
        buffer.setU32(CRC32C.checksum(Array(buffer.bytes[0..<size - 4])), at: size - 4)
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError.last("open", on: path) }
        let file = OwnedFileDescriptor(taking: fd)
        try PositionedIO.writeAll(file.rawValue, buffer.bytes, at: 0, subject: path)
        try PositionedIO.writeAll(file.rawValue, state, at: header.stateOffset, subject: path)
        guard ftruncate(file.rawValue, off_t(header.stateOffset) + off_t(state.count)) == 0 else {
            throw SystemError.last("ftruncate", on: path)
        }
    }
}
