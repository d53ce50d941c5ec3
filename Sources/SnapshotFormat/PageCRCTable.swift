import Glibc
import GuestMemory

/// A region's per-page CRC32C table, mapped read-only from the snapshot file: opening a large
/// snapshot reads it once to check its own CRC (about 1 MiB per GiB of guest memory, at
/// CRC32C's hardware speed) but copies nothing, and a page's CRC comes from the page cache. The reader has checked the table lies inside the file. (A file truncated by another
/// process while mapped would fault on access, as the page areas of a mapped restore would.)
@safe
package final class PageCRCTable: @unchecked Sendable, RandomAccessCollection, Equatable {
    private let base: UnsafeRawPointer
    private let mappedLength: Int
    package let endIndex: Int

    /// Maps `count` little-endian u32 entries at `offset` (a multiple of 4096) of `descriptor`.
    init(descriptor: CInt, offset: UInt64, count: Int, path: String) throws(SnapshotFormatError) {
        endIndex = count
        mappedLength = Swift.max(count * 4, 1)
        // SAFETY: a fresh read-only mapping of a range the reader checked lies inside the file; unmapped in deinit.
        let mapped = unsafe mmap(nil, mappedLength, PROT_READ, MAP_SHARED, descriptor, off_t(offset))
        guard let mapped = unsafe mapped, unsafe mapped != MAP_FAILED else {
            throw .systemCall(path: path, name: "mmap (CRC table)", errno: errno)
        }
        unsafe base = UnsafeRawPointer(mapped)
    }

    deinit {
        // SAFETY: unmaps exactly the mapping made in init.
        _ = unsafe munmap(UnsafeMutableRawPointer(mutating: base), mappedLength)
    }

    package var startIndex: Int { 0 }

    package subscript(page: Int) -> UInt32 {
        precondition(page >= 0 && page < endIndex, "CRC table index \(page) beyond \(endIndex) pages")
        // SAFETY: page * 4 + 4 <= count * 4, the mapped length.
        return unsafe base.loadUnaligned(fromByteOffset: page * 4, as: UInt32.self).littleEndian
    }

    /// CRC32C of the table's bytes as stored (what the region entry records in version 2).
    package func checksum() -> UInt32 {
        // SAFETY: the mapping holds endIndex * 4 readable bytes for this object's life.
        unsafe CRC32C.update(0, bytes: UnsafeRawBufferPointer(start: base, count: endIndex * 4))
    }

    package static func == (lhs: PageCRCTable, rhs: PageCRCTable) -> Bool { lhs.elementsEqual(rhs) }
}
