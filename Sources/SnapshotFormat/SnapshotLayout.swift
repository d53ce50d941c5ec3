/// Every constant of the snapshot file format (docs/FORMAT.md), in one place.
package enum SnapshotLayout {
    /// `ENGRAMSN` in ASCII.
    package static let magic: [UInt8] = Array("ENGRAMSN".utf8)
    /// The version this code writes; it reads this one and every older one.
    package static let formatVersion: UInt32 = 2
    /// The first version, still read (no ids, feature flags, configuration or sections).
    package static let firstVersion: UInt32 = 1
    /// Reads as 04 03 02 01 on disk.
    package static let endiannessMarker: UInt32 = 0x0102_0304
    /// Alignment of headers, bitmaps, CRC tables and the state section.
    package static let smallAlignment: UInt64 = 4096
    /// Alignment of each region's page area (a huge page, so restores can map it well).
    package static let pagesAlignment: UInt64 = 2 << 20
    /// Most regions one file may describe.
    package static let maximumRegionCount: UInt32 = 64
    /// Largest region the format accepts.
    package static let maximumRegionSize: UInt64 = 1 << 40
    /// Most guest placements per region.
    package static let maximumPlacements = 4
    /// Largest state section, checked before it is read.
    package static let maximumStateLength: UInt64 = 16 << 20
    /// Largest configuration section area, checked before it is read.
    package static let maximumConfigurationLength: UInt64 = 1 << 20
    /// Bytes of the fixed header fields before the region table, per format version.
    package static func fixedHeaderLength(version: UInt32) -> Int { version == 1 ? 320 : 512 }
    /// Bytes of one region-table entry.
    package static let regionEntryLength = 224
    /// Bytes of the zero-padded region name field.
    package static let regionNameLength = 64
    /// Bytes of the zero-padded parent file name field (the name itself is at most 255).
    package static let parentNameLength = 256
    /// Most files in a chain (a full snapshot and 63 diffs): readers refuse longer chains and
    /// the VMM refuses to write the diff that would make one.
    package static let maximumChainFiles = 64
    /// Offset of the parent name field.
    package static let parentNameOffset = 32
    /// Largest write or read system call the writer and reader issue.
    package static let maximumIOLength = 8 << 20

    /// Header size for `regionCount` regions: fixed fields, table and CRC, rounded up to 4 KiB.
    package static func headerSize(regionCount: Int, version: UInt32 = formatVersion) -> Int {
        let raw = fixedHeaderLength(version: version) + regionEntryLength * regionCount + 4
        return (raw + 4095) / 4096 * 4096
    }
}
