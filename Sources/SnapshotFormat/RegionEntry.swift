import GuestMemory

/// One region-table entry (224 bytes, docs/FORMAT.md "Region table entry"), as stored.
package struct RegionEntry: Sendable, Equatable {
    package var name: String
    package var sizeInBytes: UInt64
    package var pageSize: UInt32
    package var placements: [GuestPlacement]
    package var bitmapOffset: UInt64
    package var bitmapLength: UInt64
    package var crcTableOffset: UInt64
    package var crcTableLength: UInt64
    package var pagesOffset: UInt64
    /// CRC32C of the bitmap and of the CRC table as stored (version 2; zero in version 1 files).
    package var bitmapCRC: UInt32 = 0
    package var crcTableCRC: UInt32 = 0

    package init(
        name: String, sizeInBytes: UInt64, pageSize: UInt32, placements: [GuestPlacement],
        bitmapOffset: UInt64, bitmapLength: UInt64, crcTableOffset: UInt64, crcTableLength: UInt64, pagesOffset: UInt64
    ) {
        self.name = name
        self.sizeInBytes = sizeInBytes
        self.pageSize = pageSize
        self.placements = placements
        self.bitmapOffset = bitmapOffset
        self.bitmapLength = bitmapLength
        self.crcTableOffset = crcTableOffset
        self.crcTableLength = crcTableLength
        self.pagesOffset = pagesOffset
    }

    /// Writes this entry at `base` in `buffer`; the name must fit (the writer checks first).
    package func encode(into buffer: inout LittleEndianBuffer, at base: Int) {
        buffer.setBytes(Array(name.utf8), at: base)
        buffer.setU64(sizeInBytes, at: base + 64)
        buffer.setU32(pageSize, at: base + 72)
        buffer.setU32(UInt32(placements.count), at: base + 76)
        for (i, placement) in placements.enumerated() {
            let at = base + 80 + 24 * i
            buffer.setU64(placement.guestAddress.rawValue, at: at)
            buffer.setU64(placement.sizeInBytes, at: at + 8)
            buffer.setU64(placement.regionOffset.rawValue, at: at + 16)
        }
        buffer.setU64(bitmapOffset, at: base + 176)
        buffer.setU64(bitmapLength, at: base + 184)
        buffer.setU64(crcTableOffset, at: base + 192)
        buffer.setU64(crcTableLength, at: base + 200)
        buffer.setU64(pagesOffset, at: base + 208)
        buffer.setU32(bitmapCRC, at: base + 216)
        buffer.setU32(crcTableCRC, at: base + 220)
    }

    /// Reads entry `index` at `base`, checking only what decoding needs (text, counts, zero padding);
    /// the reader checks sizes and offsets against the file.
    package static func decode(
        _ buffer: LittleEndianBuffer, at base: Int, index: Int, version: UInt32, path: String
    ) throws(SnapshotFormatError) -> RegionEntry {
        let field = "region table entry \(index)"
        guard let name = buffer.paddedText(at: base, count: SnapshotLayout.regionNameLength), !name.isEmpty else {
            throw .invalidField(path: path, field: "\(field) name", reason: "is not 1 to 64 bytes of zero-padded UTF-8")
        }
        let placementCount = buffer.u32(at: base + 76)
        guard placementCount <= UInt32(SnapshotLayout.maximumPlacements) else {
            throw .invalidField(path: path, field: "region \(name) placement count", reason: "is \(placementCount); expected at most 4")
        }
        var placements: [GuestPlacement] = []
        for i in 0..<SnapshotLayout.maximumPlacements {
            let at = base + 80 + 24 * i
            let placement = GuestPlacement(
                guestAddress: GuestAddress(buffer.u64(at: at)), sizeInBytes: buffer.u64(at: at + 8),
                regionOffset: RegionOffset(buffer.u64(at: at + 16)))
            if i < Int(placementCount) {
                placements.append(placement)
            } else if placement != GuestPlacement(guestAddress: GuestAddress(0), sizeInBytes: 0, regionOffset: RegionOffset(0)) {
                throw .invalidField(path: path, field: "region \(name) placement \(i)", reason: "is past the placement count; expected zeros")
            }
        }
        if version == 1 {
            guard buffer.u64(at: base + 216) == 0 else {
                throw .invalidField(path: path, field: "region \(name) reserved field", reason: "is not zero")
            }
        }
        var entry = RegionEntry(
            name: name, sizeInBytes: buffer.u64(at: base + 64), pageSize: buffer.u32(at: base + 72), placements: placements,
            bitmapOffset: buffer.u64(at: base + 176), bitmapLength: buffer.u64(at: base + 184),
            crcTableOffset: buffer.u64(at: base + 192), crcTableLength: buffer.u64(at: base + 200),
            pagesOffset: buffer.u64(at: base + 208))
        if version >= 2 {
            entry.bitmapCRC = buffer.u32(at: base + 216)
            entry.crcTableCRC = buffer.u32(at: base + 220)
        }
        return entry
    }
}
