import GuestMemory
import LinuxSystem

/// A region's per-page CRC32C table, mapped read-only from the snapshot file: opening a snapshot
/// reads the parts holding stored pages' entries once to check the table's own CRC but copies
/// nothing, and a page's CRC comes from the page cache. The reader has checked the table lies
/// inside the file. (A file truncated by another process while mapped would fault on access, as
/// the page areas of a mapped restore would.)
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

    /// CRC32C of the table as stored, with each run of 64-page groups that `stored` has no page in
    /// taken as the zeros writers put there: equal to `checksum()` for a table as written, and it
    /// pins every entry a reader uses. It reads only the groups holding stored pages and steps over
    /// each empty run at once, so a sparse 8 GiB guest costs what its data does, not a pass over
    /// 8 MiB of table; a full one costs what `checksum()` does.
    package func checksum(stored: PageBitmap) -> UInt32 {
        precondition(stored.pageCount == UInt64(endIndex), "a bitmap of \(stored.pageCount) pages for a table of \(endIndex)")
        let words = stored.words
        var crc: UInt32 = 0
        var word = 0
        while word < words.count {
            let empty = words[word] == 0
            var end = word + 1
            while end < words.count && (words[end] == 0) == empty { end += 1 }
            // Entries [64·word, 64·end), clamped to the table (the last group may be short).
            let offset = word * 64 * 4
            let count = Swift.min(end * 64, endIndex) * 4 - offset
            crc = empty
                ? CRC32C.appendingZeros(crc, count: UInt64(count))
                : mapping.withBytes(at: offset, count: count) { CRC32C.update(crc, bytes: $0) }
            word = end
        }
        return crc
    }

    package static func == (lhs: PageCRCTable, rhs: PageCRCTable) -> Bool { lhs.elementsEqual(rhs) }
}
