import LinuxSystem
import GuestMemory

/// The file header (docs/FORMAT.md "File header"): the fixed fields and the region table.
package struct FileHeader: Sendable, Equatable {
    package var kind: SnapshotKind
    /// The parent snapshot's file name for a diff; empty for a full snapshot.
    package var parentFileName: String
    package var stateOffset: UInt64
    package var stateLength: UInt64
    package var stateCRC: UInt32
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    package var creationTime: UInt64
    package var regions: [RegionEntry]

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
    package var headerSize: Int { SnapshotLayout.headerSize(regionCount: regions.count) }

    /// The header bytes, CRC included.
    package func encode() -> [UInt8] {
        let size = headerSize
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
        for (i, region) in regions.enumerated() {
            region.encode(into: &buffer, at: SnapshotLayout.fixedHeaderLength + SnapshotLayout.regionEntryLength * i)
        }
        buffer.setU32(CRC32C.checksum(Array(buffer.bytes[0..<size - 4])), at: size - 4)
        return buffer.bytes
    }

    /// Checks the identifying fields of the first 4 KiB and returns the full header size they imply.
    package static func headerSize(
        ofFirstPage page: [UInt8], path: String
    ) throws(SnapshotFormatError) -> Int {
        let buffer = LittleEndianBuffer(bytes: page)
        guard buffer.slice(at: 0, count: 8) == SnapshotLayout.magic else { throw .badMagic(path: path) }
        let version = buffer.u32(at: 8)
        guard version <= SnapshotLayout.formatVersion else { throw .newerVersion(path: path, version: version) }
        guard version == SnapshotLayout.formatVersion else { throw .invalidVersion(path: path, version: version) }
        let marker = buffer.u32(at: 12)
        guard marker == SnapshotLayout.endiannessMarker else { throw .wrongEndianness(path: path, found: marker) }
        let regionCount = buffer.u32(at: 28)
        guard regionCount >= 1, regionCount <= SnapshotLayout.maximumRegionCount else {
            throw .invalidField(path: path, field: "region count", reason: "is \(regionCount); expected 1 to \(SnapshotLayout.maximumRegionCount)")
        }
        let expected = SnapshotLayout.headerSize(regionCount: Int(regionCount))
        let stored = buffer.u32(at: 16)
        guard stored == UInt32(expected) else {
            throw .invalidField(path: path, field: "header size", reason: "is \(stored); expected \(expected) for \(regionCount) regions")
        }
        return expected
    }

    /// Decodes a whole header whose size `headerSize(ofFirstPage:)` accepted: CRC first, then fields.
    package static func decode(_ bytes: [UInt8], path: String) throws(SnapshotFormatError) -> FileHeader {
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
        guard let parent = buffer.paddedText(at: SnapshotLayout.parentNameOffset, count: SnapshotLayout.parentNameLength) else {
            throw .invalidField(path: path, field: "parent file name", reason: "is not zero-padded UTF-8")
        }
        switch kind {
        case .full where !parent.isEmpty:
            throw .invalidField(path: path, field: "parent file name", reason: "is set in a full snapshot; expected zeros")
        case .diff where parent.isEmpty || parent.contains("/"):
            throw .invalidField(path: path, field: "parent file name", reason: "of a diff snapshot is \"\(parent)\"; expected a file name")
        default: break
        }
        guard buffer.u32(at: 308) == 0 else { throw .invalidField(path: path, field: "reserved field at 308", reason: "is not zero") }
        var regions: [RegionEntry] = []
        for i in 0..<Int(buffer.u32(at: 28)) {
            let base = SnapshotLayout.fixedHeaderLength + SnapshotLayout.regionEntryLength * i
            regions.append(try RegionEntry.decode(buffer, at: base, index: i, path: path))
        }
        return FileHeader(
            kind: kind, parentFileName: parent, stateOffset: buffer.u64(at: 288), stateLength: buffer.u64(at: 296),
            stateCRC: buffer.u32(at: 304), creationTime: buffer.u64(at: 312), regions: regions)
    }
}
