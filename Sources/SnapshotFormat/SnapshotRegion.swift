import GuestMemory

/// One region of a validated snapshot: its placement, which pages it holds, and where they are.
package struct SnapshotRegion: Sendable, Equatable {
    /// Position in the region table; the reader looks regions up by it.
    package let index: Int
    package let name: String
    package let sizeInBytes: UInt64
    package let placements: [GuestPlacement]
    /// Pages stored in this file (see docs/FORMAT.md for what a clear bit means per kind).
    package let bitmap: PageBitmap
    /// CRC32C per page (0 for pages not stored; only the entries of stored pages are used).
    package let pageCRCs: PageCRCTable
    /// File offset of page 0; page i is at `pagesOffset + i * 4096`. A restore may mmap it MAP_PRIVATE.
    package let pagesOffset: UInt64
    package let bitmapOffset: UInt64
    package let crcTableOffset: UInt64

    package init(
        index: Int, name: String, sizeInBytes: UInt64, placements: [GuestPlacement], bitmap: PageBitmap,
        pageCRCs: PageCRCTable, pagesOffset: UInt64, bitmapOffset: UInt64, crcTableOffset: UInt64
    ) {
        self.index = index
        self.name = name
        self.sizeInBytes = sizeInBytes
        self.placements = placements
        self.bitmap = bitmap
        self.pageCRCs = pageCRCs
        self.pagesOffset = pagesOffset
        self.bitmapOffset = bitmapOffset
        self.crcTableOffset = crcTableOffset
    }

    /// Pages in the region.
    package var pageCount: UInt64 { bitmap.pageCount }

    /// True if `page` is stored in this file.
    package func isPresent(_ page: PageIndex) -> Bool { bitmap.contains(page) }
}
