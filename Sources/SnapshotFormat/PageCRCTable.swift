import GuestMemory
import LinuxSystem

/// A region's per-page CRC32C table, mapped read-only from the snapshot file: opening a large
/// snapshot reads it once to check its own CRC (about 1 MiB per GiB of guest memory, at
/// CRC32C's hardware speed) but copies nothing, and a page's CRC comes from the page cache. The
/// reader has checked the table lies inside the file. (A file truncated by another process
/// while mapped would fault on access, as the page areas of a mapped restore would.)
package final class PageCRCTable: Sendable, RandomAccessCollection, Equatable {
    private let mapping: ReadOnlyMapping
    package let endIndex: Int

    /// Maps `count` little-endian u32 entries at `offset` (a multiple of 4096) of `descriptor`.
    init(descriptor: CInt, offset: UInt64, count: Int, path: String) throws(SnapshotFormatError) {
        endIndex = count
        do { mapping = try ReadOnlyMapping(descriptor: descriptor, offset: offset, length: Swift.max(count * 4, 1), subject: path) } catch {
            throw .systemCall(path: path, name: "mmap (CRC table)", errno: error.errno.rawValue)
        }
    }

    package var startIndex: Int { 0 }

    package subscript(page: Int) -> UInt32 {
        precondition(page >= 0 && page < endIndex, "CRC table index \(page) beyond \(endIndex) pages")
        return mapping.littleEndianUInt32(at: page * 4)
    }

    /// CRC32C of the table's bytes as stored (what the region entry records in version 2).
    package func checksum() -> UInt32 {
        mapping.withBytes(at: 0, count: endIndex * 4) { CRC32C.checksum($0) }
    }

    package static func == (lhs: PageCRCTable, rhs: PageCRCTable) -> Bool { lhs.elementsEqual(rhs) }
}
