import LinuxSystem
import GuestMemory

/// The file header (docs/FORMAT.md "File header"): the fixed fields and the region table.
///
/// Decodes versions 1 and 2 and encodes version 2. Version 1 files have no id, parent
/// identity, feature flags, configuration area or table CRCs; those read as zero.
package struct FileHeader: Sendable, Equatable {
    /// The format version the header was read as (what `encode` writes: the current one).
    package var version: UInt32 = SnapshotLayout.formatVersion
    package var kind: SnapshotKind
    /// The parent snapshot's file name for a diff; empty for a full snapshot.
    package var parentFileName: String
    package var stateOffset: UInt64
    package var stateLength: UInt64
    package var stateCRC: UInt32
    /// Nanoseconds since 1970-01-01T00:00:00Z by the writer's CLOCK_REALTIME, unsigned.
    package var creationTime: UInt64
    package var snapshotID: SnapshotID = .none
    /// A diff's parent as it was when the diff was taken; nil for a full snapshot.
    package var parent: SnapshotIdentity?
    package var features = SnapshotFeatures()
    package var configurationOffset: UInt64 = 0
    package var configurationLength: UInt64 = 0
    package var configurationCRC: UInt32 = 0
    package var regions: [RegionEntry]
    /// The CRC32C stored at the header's end (set by `decode`; `encode` computes it).
    package var headerCRC: UInt32 = 0

    package init(
        kind: SnapshotKind, parentFileName: String, stateOffset: UInt64, stateLength: UInt64, stateCRC: UInt32,
        creationTime: UInt64, regions: [RegionEntry]
    ) {
        self.kind = kind
        self.parentFileName = parentFileName
        self.stateOffset = stateOffset
        self.stateLength = stateLength
        self.stateCRC = stateCRC
        self.creationTime = creationTime
        self.regions = regions
    }

    /// The header's size on disk.
    package var headerSize: Int { SnapshotLayout.headerSize(regionCount: regions.count, version: version) }

    /// This file's identity, as a diff of it records it.
    package var identity: SnapshotIdentity { SnapshotIdentity(id: snapshotID, headerCRC: headerCRC) }

    /// The header bytes of the current version, CRC included.
    package func encode() -> [UInt8] {
        let size = SnapshotLayout.headerSize(regionCount: regions.count)
        var buffer = LittleEndianBuffer(count: size)
        buffer.setBytes(SnapshotLayout.magic, at: 0)
        buffer.setU32(SnapshotLayout.formatVersion, at: 8)
        buffer.setU32(SnapshotLayout.endiannessMarker, at: 12)
        buffer.setU32(UInt32(size), at: 16)
        buffer.setU32(kind.rawValue, at: 20)
        buffer.setU32(UInt32(PageSize.bytes64), at: 24)
        buffer.setU32(UInt32(regions.count), at: 28)
        buffer.setBytes(Array(parentFileName.utf8), at: SnapshotLayout.parentNameOffset)
        buffer.setU64(stateOffset, at: 288)
        buffer.setU64(stateLength, at: 296)
        buffer.setU32(stateCRC, at: 304)
        buffer.setU64(creationTime, at: 312)
        buffer.setBytes(snapshotID.bytes, at: 320)
        if let parent {
            buffer.setBytes(parent.id.bytes, at: 336)
            buffer.setU32(parent.headerCRC, at: 352)
        }
        buffer.setU64(features.compatible, at: 360)
        buffer.setU64(features.incompatible, at: 368)
        buffer.setU64(configurationOffset, at: 376)
        buffer.setU64(configurationLength, at: 384)
        buffer.setU32(configurationCRC, at: 392)
        let table = SnapshotLayout.fixedHeaderLength(version: SnapshotLayout.formatVersion)
        for (i, region) in regions.enumerated() {
            region.encode(into: &buffer, at: table + SnapshotLayout.regionEntryLength * i)
        }
        buffer.setU32(CRC32C.checksum(Array(buffer.bytes[0..<size - 4])), at: size - 4)
        return buffer.bytes
    }

    /// Reads and checks the header of the open snapshot `fd` (`fileSize` bytes long): the first
    /// 4 KiB, then the whole header they imply, CRC first.
    static func read(_ fd: CInt, fileSize: UInt64, path: String) throws(SnapshotFormatError) -> FileHeader {
        let firstPage = Int(SnapshotLayout.smallAlignment)
        guard fileSize >= UInt64(firstPage) else { throw .truncated(path: path, expected: UInt64(firstPage), found: fileSize) }
        let (version, size) = try headerSize(ofFirstPage: FileIO.read(fd, count: firstPage, at: 0, path: path), path: path)
        guard fileSize >= UInt64(size) else { throw .truncated(path: path, expected: UInt64(size), found: fileSize) }
        return try decode(FileIO.read(fd, count: size, at: 0, path: path), version: version, path: path)
    }

    /// Checks the identifying fields of the first 4 KiB and returns the version and the full
    /// header size they imply.
    package static func headerSize(
        ofFirstPage page: [UInt8], path: String
    ) throws(SnapshotFormatError) -> (version: UInt32, size: Int) {
        let buffer = LittleEndianBuffer(bytes: page)
        guard buffer.slice(at: 0, count: 8) == SnapshotLayout.magic else { throw .badMagic(path: path) }
        let version = buffer.u32(at: 8)
        guard version <= SnapshotLayout.formatVersion else { throw .newerVersion(path: path, version: version) }
        guard version >= SnapshotLayout.firstVersion else { throw .invalidVersion(path: path, version: version) }
        let marker = buffer.u32(at: 12)
        guard marker == SnapshotLayout.endiannessMarker else { throw .wrongEndianness(path: path, found: marker) }
        let regionCount = buffer.u32(at: 28)
        guard regionCount >= 1, regionCount <= SnapshotLayout.maximumRegionCount else {
            throw .invalidField(path: path, field: "region count", reason: "is \(regionCount); expected 1 to \(SnapshotLayout.maximumRegionCount)")
        }
        let expected = SnapshotLayout.headerSize(regionCount: Int(regionCount), version: version)
        let stored = buffer.u32(at: 16)
        guard stored == UInt32(expected) else {
            throw .invalidField(path: path, field: "header size", reason: "is \(stored); expected \(expected) for \(regionCount) regions")
        }
        return (version, expected)
    }

    /// Decodes a whole header whose size `headerSize(ofFirstPage:)` accepted: CRC first, then fields.
    package static func decode(_ bytes: [UInt8], version: UInt32, path: String) throws(SnapshotFormatError) -> FileHeader {
        let size = bytes.count
        let buffer = LittleEndianBuffer(bytes: bytes)
        let stored = buffer.u32(at: size - 4)
        let computed = CRC32C.checksum(Array(bytes[0..<size - 4]))
        guard stored == computed else { throw .headerChecksum(path: path, stored: stored, computed: computed) }

        let rawKind = buffer.u32(at: 20)
        guard let kind = SnapshotKind(rawValue: rawKind) else {
            throw .invalidField(path: path, field: "kind", reason: "is \(rawKind); expected 1 (full) or 2 (diff)")
        }
        let pageSize = buffer.u32(at: 24)
        guard UInt64(pageSize) == PageSize.bytes64 else {
            throw .invalidField(path: path, field: "page size", reason: "is \(pageSize); expected \(PageSize.bytes64)")
        }
        let parent = try parentName(buffer, kind: kind, version: version, path: path)
        guard buffer.u32(at: 308) == 0 else { throw .invalidField(path: path, field: "reserved field at 308", reason: "is not zero") }
        var header = FileHeader(
            kind: kind, parentFileName: parent, stateOffset: buffer.u64(at: 288), stateLength: buffer.u64(at: 296),
            stateCRC: buffer.u32(at: 304), creationTime: buffer.u64(at: 312), regions: [])
        header.version = version
        header.headerCRC = stored
        if version >= 2 { try decodeVersion2Fields(buffer, into: &header, path: path) }
        let table = SnapshotLayout.fixedHeaderLength(version: version)
        let regionCount = Int(buffer.u32(at: 28))
        for i in 0..<regionCount {
            header.regions.append(try RegionEntry.decode(
                buffer, at: table + SnapshotLayout.regionEntryLength * i, index: i, version: version, path: path))
        }
        let tableEnd = table + SnapshotLayout.regionEntryLength * regionCount
        guard bytes[tableEnd..<size - 4].allSatisfy({ $0 == 0 }) else {
            throw .invalidField(path: path, field: "header padding after the region table", reason: "is not zero")
        }
        return header
    }

    /// The parent name field: empty for a full snapshot; for a diff a file name (not `.` or
    /// `..`, no `/`) of at most 255 bytes, so at least one NUL ends it.
    private static func parentName(
        _ buffer: LittleEndianBuffer, kind: SnapshotKind, version: UInt32, path: String
    ) throws(SnapshotFormatError) -> String {
        guard let parent = buffer.paddedText(at: SnapshotLayout.parentNameOffset, count: SnapshotLayout.parentNameLength) else {
            throw .invalidField(path: path, field: "parent file name", reason: "is not zero-padded UTF-8")
        }
        switch kind {
        case .full where !parent.isEmpty:
            throw .invalidField(path: path, field: "parent file name", reason: "is set in a full snapshot; expected zeros")
        case .diff where !isValidParentName(parent):
            throw .invalidField(path: path, field: "parent file name", reason: "of a diff snapshot is \"\(parent)\"; expected a file name of 1 to 255 bytes, not . or ..")
        default: return parent
        }
    }

    /// True if `name` may name a parent: a plain file name in the same directory.
    package static func isValidParentName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return !bytes.isEmpty && bytes.count < SnapshotLayout.parentNameLength && !bytes.contains(0)
            && !bytes.contains(UInt8(ascii: "/")) && name != "." && name != ".."
    }

    private static func decodeVersion2Fields(
        _ buffer: LittleEndianBuffer, into header: inout FileHeader, path: String
    ) throws(SnapshotFormatError) {
        header.snapshotID = SnapshotID(bytes: buffer.slice(at: 320, count: 16))
        guard header.snapshotID != .none else { throw .invalidField(path: path, field: "snapshot id", reason: "is zero; expected 16 random bytes") }
        let parentID = SnapshotID(bytes: buffer.slice(at: 336, count: 16))
        let parentCRC = buffer.u32(at: 352)
        switch header.kind {
        case .full where parentID != .none || parentCRC != 0:
            throw .invalidField(path: path, field: "parent identity", reason: "is set in a full snapshot; expected zeros")
        case .diff: header.parent = SnapshotIdentity(id: parentID, headerCRC: parentCRC)
        default: break
        }
        guard buffer.u32(at: 356) == 0 else { throw .invalidField(path: path, field: "reserved field at 356", reason: "is not zero") }
        header.features = SnapshotFeatures(compatible: buffer.u64(at: 360), incompatible: buffer.u64(at: 368))
        let unknown = header.features.unknownIncompatible
        guard unknown == 0 else {
            throw .invalidField(path: path, field: "incompatible feature bits",
                                reason: "0x\(String(unknown, radix: 16)) are unknown to this Engram; a newer Engram wrote this file")
        }
        header.configurationOffset = buffer.u64(at: 376)
        header.configurationLength = buffer.u64(at: 384)
        header.configurationCRC = buffer.u32(at: 392)
        guard buffer.bytes[396..<512].allSatisfy({ $0 == 0 }) else {
            throw .invalidField(path: path, field: "reserved bytes 396 to 511", reason: "are not zero")
        }
    }
}
